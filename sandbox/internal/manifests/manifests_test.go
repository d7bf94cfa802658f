package manifests_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ordermin/ordermin-backfill/config"
)

// reportPath is where the backfill writes its final report (report.file) and
// where Kubernetes reads the termination message from.
const reportPath = "/dev/termination-log"

// containerName is the backfill container, the one podFailurePolicy names.
const containerName = "backfill"

// knownSettings are the backfill's dotted setting names, from package
// config's own table, plus "config" (BACKFILL_CONFIG, the file itself).
var knownSettings = func() map[string]bool {
	known := map[string]bool{"config": true}
	for _, n := range config.Names() {
		known[n] = true
	}
	return known
}()

// secretSettings hold credentials: never a plain value in a ConfigMap or env
// entry, only their _file form or env from a secretKeyRef.
var secretSettings = []string{"kafka.sasl_password", "schema_registry.password", "ksqldb.password"}

// secretFileSettings name credential files, which must be on a read-only
// secret volume.
var secretFileSettings = []string{
	"kafka.sasl_password_file", "schema_registry.password_file", "ksqldb.password_file",
	"bigquery.credentials_file",
}

// Exit codes of the backfill: fatal ones must fail the Job at once, the
// others may be retried by a new pod.
var (
	fatalExitCodes     = []int32{2, 3}
	retriableExitCodes = []int32{1, 4, 5, 7, 130}
)

// minMemoryLimit leaves headroom over the job's 200MiB RSS target.
var minMemoryLimit = resource.MustParse("256Mi")

// envName is the environment variable of a dotted setting name.
func envName(setting string) string {
	return "BACKFILL_" + strings.ToUpper(strings.ReplaceAll(setting, ".", "_"))
}

// settingOf returns the dotted setting an env var names, if any.
func settingOf(env string) (string, bool) {
	for s := range knownSettings {
		if envName(s) == env {
			return s, true
		}
	}
	return "", false
}

// replacement is a kustomize replacement: one source field copied into
// target fields.
type replacement struct {
	Source struct {
		Kind      string `json:"kind"`
		Name      string `json:"name"`
		FieldPath string `json:"fieldPath"`
	} `json:"source"`
	Targets []struct {
		Select struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"select"`
		FieldPaths []string `json:"fieldPaths"`
	} `json:"targets"`
}

// object is one decoded manifest document.
type object struct {
	file string // slash path relative to k8s/
	obj  any    // *batchv1.Job, *corev1.ConfigMap, *corev1.Secret or *corev1.ServiceAccount
}

// manifests is everything under k8s/.
type manifests struct {
	objects   []object
	files     []string        // manifest files other than kustomizations
	resources map[string]bool // files some kustomization lists as resources
	patches   map[string]bool // files some kustomization lists as patches
	errs      []error         // decoding and kustomization errors
}

// load reads every YAML file under k8s/ (the package directory).
func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{resources: map[string]bool{}, patches: map[string]bool{}}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		p = filepath.ToSlash(p)
		if b := path.Base(p); b == "kustomization.yaml" || b == "kustomization.yml" {
			m.readKustomization(p, data)
			return nil
		}
		m.files = append(m.files, p)
		for i, doc := range splitDocuments(data) {
			obj, err := decode(doc)
			switch {
			case err != nil:
				m.errs = append(m.errs, fmt.Errorf("%s: document %d: %w", p, i+1, err))
			case obj != nil:
				m.objects = append(m.objects, object{p, obj})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *manifests) readKustomization(p string, data []byte) {
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		m.errs = append(m.errs, fmt.Errorf("%s: %w", p, err))
		return
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		m.errs = append(m.errs, fmt.Errorf("%s: apiVersion/kind %s/%s, want kustomize.config.k8s.io/v1beta1/Kustomization", p, k.APIVersion, k.Kind))
	}
	if len(k.Resources) == 0 {
		m.errs = append(m.errs, fmt.Errorf("%s: no resources", p))
	}
	dir := path.Dir(p)
	check := func(ref string, into map[string]bool) {
		target := path.Join(dir, ref)
		if _, err := os.Stat(filepath.FromSlash(target)); err != nil {
			m.errs = append(m.errs, fmt.Errorf("%s: %q: %w", p, ref, err))
		}
		if strings.Contains(path.Base(ref), ".example.") {
			m.errs = append(m.errs, fmt.Errorf("%s: lists the example %q: examples are never applied", p, ref))
		}
		into[target] = true
	}
	for _, r := range k.Resources {
		check(r, m.resources)
	}
	for _, r := range k.Patches {
		if r.Path != "" {
			check(r.Path, m.patches)
		}
	}
}

// splitDocuments splits a YAML stream on its "---" lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for line := range bytes.Lines(data) {
		if string(bytes.TrimRight(line, " \t\r\n")) == "---" {
			docs, cur = append(docs, cur), nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

// decode decodes one YAML document strictly (unknown, duplicate or
// wrongly-cased fields and mistyped values are errors) into the k8s.io/api type of its apiVersion and kind. A document
// holding only comments gives nil.
func decode(doc []byte) (any, error) {
	var generic any
	if err := yaml.Unmarshal(doc, &generic); err != nil {
		return nil, err
	}
	if generic == nil {
		return nil, nil
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "batch/v1 Job":
		obj = new(batchv1.Job)
	case "v1 ConfigMap":
		obj = new(corev1.ConfigMap)
	case "v1 Secret":
		obj = new(corev1.Secret)
	case "v1 ServiceAccount":
		obj = new(corev1.ServiceAccount)
	default:
		return nil, fmt.Errorf("unknown kind %q of apiVersion %q", tm.Kind, tm.APIVersion)
	}
	// As kubectl and the API server do: YAML to JSON without type hints
	// (sigs.k8s.io/yaml.UnmarshalStrict would quote a number for a string
	// field), then case-sensitive JSON with strict field validation.
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err = errors.Join(append([]error{err}, strict...)...); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// applied reports whether a file's objects are applied whole, not as a
// patch: invariants are checked on those only.
func (m *manifests) applied(file string) bool {
	return !m.patches[file] && !strings.Contains(path.Base(file), ".example.")
}

func (m *manifests) jobs() []*batchv1.Job {
	var out []*batchv1.Job
	for _, o := range m.objects {
		if j, ok := o.obj.(*batchv1.Job); ok && m.applied(o.file) {
			out = append(out, j)
		}
	}
	return out
}

// localConfig is the annotation marking a resource kustomize reads (a
// replacement's source) but leaves out of its output.
const localConfig = "config.kubernetes.io/local-config"

func (m *manifests) configMaps() []*corev1.ConfigMap {
	var out []*corev1.ConfigMap
	for _, o := range m.objects {
		if c, ok := o.obj.(*corev1.ConfigMap); ok && m.applied(o.file) && c.Annotations[localConfig] != "true" {
			out = append(out, c)
		}
	}
	return out
}

func (m *manifests) configMap(name string) *corev1.ConfigMap {
	for _, c := range m.configMaps() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// secret finds a Secret by name, examples included: they document the keys.
func (m *manifests) secret(name string) *corev1.Secret {
	for _, o := range m.objects {
		if s, ok := o.obj.(*corev1.Secret); ok && s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifests) serviceAccount(name string) *corev1.ServiceAccount {
	for _, o := range m.objects {
		if sa, ok := o.obj.(*corev1.ServiceAccount); ok && sa.Name == name && m.applied(o.file) {
			return sa
		}
	}
	return nil
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	for _, err := range m.errs {
		t.Error(err)
	}
	if len(m.objects) == 0 {
		t.Fatal("no manifest found under k8s/")
	}
	kinds := map[string]bool{}
	for _, o := range m.objects {
		kinds[fmt.Sprintf("%T", o.obj)] = true
	}
	for _, want := range []string{"*v1.Job", "*v1.ConfigMap", "*v1.ServiceAccount", "*v1.Secret"} {
		if !kinds[want] {
			t.Errorf("no %s among the manifests", want)
		}
	}
}

// TestDecodeRejects shows the decoder is strict: these would be silently
// dropped or defaulted by a lenient one.
func TestDecodeRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: batch/v1\nkind: Job\nspec:\n  backofLimit: 3\n",
		"wrong case":    "apiVersion: batch/v1\nkind: Job\nspec:\n  backOffLimit: 3\n",
		"unknown kind":  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n",
		"wrong version": "apiVersion: batch/v1beta1\nkind: Job\n",
		"non-string":    "apiVersion: v1\nkind: ConfigMap\ndata:\n  BACKFILL_PIPELINE_WORKERS: 4\n",
		"duplicate key": "apiVersion: v1\nkind: ConfigMap\ndata:\n  A: x\n  A: y\n",
	} {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error:\n%s", name, doc)
		}
	}
}

func TestEveryManifestIsInAKustomization(t *testing.T) {
	m := load(t)
	for _, f := range m.files {
		example := strings.Contains(path.Base(f), ".example.")
		if !example && !m.resources[f] && !m.patches[f] {
			t.Errorf("%s is listed in no kustomization.yaml (resources or patches)", f)
		}
	}
	if len(m.resources) == 0 {
		t.Error("no kustomization.yaml under k8s/")
	}
}

func TestJob(t *testing.T) {
	m := mustLoad(t)
	for _, job := range m.jobs() {
		t.Run(job.Name, func(t *testing.T) {
			s := job.Spec
			if p := s.Parallelism; p != nil && *p != 1 {
				t.Errorf("parallelism %d: one pod at a time must produce", *p)
			}
			if c := s.Completions; c != nil && *c != 1 {
				t.Errorf("completions %d, want 1", *c)
			}
			if b := s.BackoffLimit; b == nil || *b < 0 || *b > 6 {
				t.Errorf("backoffLimit %v: set it, at most Kubernetes' default 6", shown(b))
			}
			if s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds <= 0 {
				t.Error("activeDeadlineSeconds not set")
			}
			if s.TTLSecondsAfterFinished == nil {
				t.Error("ttlSecondsAfterFinished not set")
			}
			if r := s.PodReplacementPolicy; r == nil || *r != batchv1.Failed {
				t.Errorf("podReplacementPolicy %v, want Failed", shown(r))
			}
			checkPodFailurePolicy(t, s.PodFailurePolicy)

			pod := s.Template.Spec
			if pod.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("restartPolicy %q, want Never", pod.RestartPolicy)
			}
			if pod.TerminationGracePeriodSeconds == nil {
				t.Error("terminationGracePeriodSeconds not set")
			}
			if len(pod.Containers) != 1 || pod.Containers[0].Name != containerName {
				t.Fatalf("want one container named %q", containerName)
			}
			for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
				checkSecurity(t, pod, c)
			}
			c := pod.Containers[0]
			if c.TerminationMessagePath != reportPath {
				t.Errorf("terminationMessagePath %q, want %s", c.TerminationMessagePath, reportPath)
			}
			if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
				t.Errorf("terminationMessagePolicy %q, want FallbackToLogsOnError", c.TerminationMessagePolicy)
			}
			checkResources(t, c)
			checkEnv(t, m, job, c)
			checkSecretVolumes(t, m, pod)
			checkServiceAccount(t, m, pod.ServiceAccountName)
		})
	}
}

// shown is *p for a message, or "unset".
func shown[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// exitAction returns the action of the first exit-code rule matching the
// backfill container exiting with code, or "" when none does.
func exitAction(p *batchv1.PodFailurePolicy, code int32) batchv1.PodFailurePolicyAction {
	for _, r := range p.Rules {
		req := r.OnExitCodes
		if req == nil || req.ContainerName != nil && *req.ContainerName != containerName {
			continue
		}
		if slices.Contains(req.Values, code) == (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) {
			return r.Action
		}
	}
	return ""
}

func checkSecurity(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("container %s: no securityContext", c.Name)
		return
	}
	nonRoot := psc.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("container %s: runAsNonRoot not true", c.Name)
	}
	for _, uid := range []*int64{psc.RunAsUser, sc.RunAsUser} {
		if uid != nil && *uid == 0 {
			t.Errorf("container %s: runAsUser 0", c.Name)
		}
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container %s: readOnlyRootFilesystem not true", c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container %s: allowPrivilegeEscalation not false", c.Name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("container %s: privileged", c.Name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container %s: capabilities must drop ALL and add none", c.Name)
	}
	seccomp := psc.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container %s: seccompProfile not RuntimeDefault", c.Name)
	}
}

func checkResources(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[name]
		lim, hasLim := c.Resources.Limits[name]
		if !hasReq || !hasLim {
			t.Errorf("resources: %s request and limit must both be set", name)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("resources: %s request %s above limit %s", name, req.String(), lim.String())
		}
	}
	if lim, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && lim.Cmp(minMemoryLimit) < 0 {
		t.Errorf("memory limit %s: below %s, no headroom over the 200MiB RSS target", lim.String(), minMemoryLimit.String())
	}
}

// envValue is one environment variable of the container as the kubelet
// would set it.
type envValue struct {
	value      string
	fromSecret bool
}

// containerEnv resolves envFrom ConfigMaps then env entries (which win).
func containerEnv(t *testing.T, m *manifests, c corev1.Container) map[string]envValue {
	t.Helper()
	env, errs := resolveEnv(m, c)
	for _, err := range errs {
		t.Error(err)
	}
	return env
}

// resolveEnv is containerEnv returning its errors.
func resolveEnv(m *manifests, c corev1.Container) (map[string]envValue, []error) {
	var errs []error
	env := map[string]envValue{}
	for _, from := range c.EnvFrom {
		if ref := from.ConfigMapRef; ref != nil {
			cm := m.configMap(ref.Name)
			if cm == nil {
				errs = append(errs, fmt.Errorf("envFrom: no ConfigMap %q among the manifests", ref.Name))
				continue
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = envValue{value: v}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = envValue{value: e.Value}
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = envValue{fromSecret: true}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			if cm := m.configMap(ref.Name); cm != nil {
				env[e.Name] = envValue{value: cm.Data[ref.Key]}
			}
		}
	}
	return env, errs
}

func checkEnv(t *testing.T, m *manifests, job *batchv1.Job, c corev1.Container) {
	t.Helper()
	env := containerEnv(t, m, c)
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "BACKFILL_") {
			if _, ok := settingOf(e.Name); !ok {
				t.Errorf("env %s names no known setting", e.Name)
			}
		}
	}
	for _, s := range secretSettings {
		if v, ok := env[envName(s)]; ok && !v.fromSecret {
			t.Errorf("%s is a plain value: use %s_FILE or a secretKeyRef", envName(s), envName(s))
		}
	}
	// Every pod of the Job (each shard, each retry) shares the Job's uid as
	// the query key, so that the BigQuery query runs once.
	queryKey := false
	for _, e := range c.Env {
		if e.Name == envName("bigquery.query_key") && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.labels['batch.kubernetes.io/controller-uid']" {
			queryKey = true
		}
	}
	if !queryKey {
		t.Errorf("%s must come from the Job's controller-uid label (downward API)", envName("bigquery.query_key"))
	}
	if got := env[envName("report.file")].value; got != reportPath {
		t.Errorf("%s = %q, want %s (the termination message)", envName("report.file"), got, reportPath)
	}

	grace := time.Duration(orZero(job.Spec.Template.Spec.TerminationGracePeriodSeconds)) * time.Second
	drainName := envName("pipeline.drain_timeout")
	if drain, err := time.ParseDuration(env[drainName].value); err != nil {
		t.Errorf("%s must be set explicitly to a duration: %v", drainName, err)
	} else if drain >= grace {
		t.Errorf("%s %v is not below terminationGracePeriodSeconds %v: SIGKILL would cut the drain", drainName, drain, grace)
	}

	if v, ok := env[envName("timeout")]; ok {
		deadline := time.Duration(orZero(job.Spec.ActiveDeadlineSeconds)) * time.Second
		if d, err := time.ParseDuration(v.value); err == nil && d > 0 && d >= deadline {
			t.Errorf("%s %v is not below activeDeadlineSeconds %v: the Job would be killed before reporting", envName("timeout"), d, deadline)
		}
	}

	if v, ok := env["GOMEMLIMIT"]; ok {
		// Go's units (384MiB) are Kubernetes' (384Mi) plus a B.
		q, err := resource.ParseQuantity(strings.TrimSuffix(v.value, "B"))
		lim := c.Resources.Limits[corev1.ResourceMemory]
		switch {
		case v.value == "off":
		case err != nil:
			t.Errorf("GOMEMLIMIT %q: %v", v.value, err)
		case q.Cmp(lim) >= 0:
			t.Errorf("GOMEMLIMIT %s is not below the memory limit %s", v.value, lim.String())
		}
	}

	for _, s := range secretFileSettings {
		if v, ok := env[envName(s)]; ok && v.value != "" {
			checkSecretFile(t, m, job.Spec.Template.Spec, c, envName(s), v.value)
		}
	}
}

// orZero is *p, or 0 when p is nil.
func orZero[T int32 | int64](p *T) T {
	if p == nil {
		return 0
	}
	return *p
}

// checkSecretFile checks a credential file lies on a read-only secret mount
// and, when the Secret is among the manifests, is one of its keys.
func checkSecretFile(t *testing.T, m *manifests, pod corev1.PodSpec, c corev1.Container, env, file string) {
	t.Helper()
	for _, mount := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(mount.MountPath, "/")+"/")
		if !ok {
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
		if i < 0 || pod.Volumes[i].Secret == nil {
			t.Errorf("%s=%s is on volume %q, not a secret volume", env, file, mount.Name)
			return
		}
		src := pod.Volumes[i].Secret
		key := path.Join(mount.SubPath, rel)
		for _, item := range src.Items {
			if item.Path == key {
				key = item.Key
			}
		}
		if s := m.secret(src.SecretName); s != nil {
			_, inData := s.Data[key]
			_, inString := s.StringData[key]
			if !inData && !inString {
				t.Errorf("%s=%s: Secret %q has no key %q", env, file, src.SecretName, key)
			}
		}
		return
	}
	t.Errorf("%s=%s is on no volume mount: credentials come from the secret volume", env, file)
}

func checkSecretVolumes(t *testing.T, m *manifests, pod corev1.PodSpec) {
	t.Helper()
	found := false
	for _, v := range pod.Volumes {
		if v.Secret == nil {
			continue
		}
		found = true
		if m.secret(v.Secret.SecretName) == nil {
			t.Errorf("volume %s: no Secret %q (not even an example) among the manifests", v.Name, v.Secret.SecretName)
		}
		if mode := v.Secret.DefaultMode; mode != nil && *mode&0o007 != 0 {
			t.Errorf("volume %s: defaultMode %#o lets other users read the secrets", v.Name, *mode)
		}
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			for _, mount := range c.VolumeMounts {
				if mount.Name == v.Name && !mount.ReadOnly {
					t.Errorf("container %s mounts secret volume %s read-write", c.Name, v.Name)
				}
			}
		}
	}
	if !found {
		t.Error("no secret volume: credentials are to come from a read-only secret mount")
	}
}

func checkServiceAccount(t *testing.T, m *manifests, name string) {
	t.Helper()
	if name == "" || name == "default" {
		t.Error("serviceAccountName not set: Workload Identity and IRSA bind to a dedicated ServiceAccount")
		return
	}
	sa := m.serviceAccount(name)
	if sa == nil {
		t.Errorf("no ServiceAccount %q among the manifests", name)
		return
	}
	for _, a := range []string{"iam.gke.io/gcp-service-account", "eks.amazonaws.com/role-arn"} {
		if sa.Annotations[a] == "" {
			t.Errorf("ServiceAccount %s: annotation %s missing", name, a)
		}
	}
}

func TestConfigMapSettings(t *testing.T) {
	m := mustLoad(t)
	cms := m.configMaps()
	if len(cms) == 0 {
		t.Fatal("no ConfigMap among the kustomize resources")
	}
	for _, cm := range cms {
		if len(cm.BinaryData) > 0 {
			t.Errorf("ConfigMap %s: binaryData is not a setting", cm.Name)
		}
		for key, value := range cm.Data {
			s, ok := settingOf(key)
			if !ok {
				t.Errorf("ConfigMap %s: %s is not BACKFILL_ + a known setting", cm.Name, key)
				continue
			}
			if slices.Contains(secretSettings, s) {
				t.Errorf("ConfigMap %s: %s holds a secret: use %s_FILE", cm.Name, key, key)
			}
			if err := checkValue(s, value); err != nil {
				t.Errorf("ConfigMap %s: %s: %v", cm.Name, key, err)
			}
		}
	}
}

// checkValue checks a setting's value parses as the program would parse it
// (config.CheckValue), and the manifests' own rules.
func checkValue(setting, value string) error {
	if strings.TrimSpace(value) == "" {
		return errors.New("empty value: drop the key instead")
	}
	if setting == "config" {
		return nil
	}
	if err := config.CheckValue(setting, value); err != nil {
		return err
	}
	if b, err := strconv.ParseBool(value); err == nil && b && strings.HasSuffix(setting, "insecure_skip_verify") {
		return errors.New("TLS verification is never disabled in committed manifests")
	}
	return nil
}

// The base ConfigMap names every setting the Job does not set itself, as
// a key or commented out with its default, so that an operator finds each
// one where the Job's settings live. UPDATE_CONFIGMAP=1 appends the
// missing ones, commented out.
func TestConfigMapNamesEverySetting(t *testing.T) {
	const file = "base/configmap.yaml"
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	job, err := os.ReadFile("base/job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, d := range config.Reference() {
		switch {
		case d.Secret: // named by its _FILE setting
			continue
		case strings.Contains(string(raw), d.Env+":"), strings.Contains(string(job), "name: "+d.Env+"\n"):
			continue
		}
		value := d.Default
		if value == "" {
			value = `""`
		}
		missing = append(missing, fmt.Sprintf("  # %s: %s  # %s", d.Env, value, d.Usage))
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("UPDATE_CONFIGMAP") == "" {
		t.Fatalf("%s does not name %d settings; add them or run UPDATE_CONFIGMAP=1 go test ./internal/manifests/ in sandbox/:\n%s", file, len(missing), strings.Join(missing, "\n"))
	}
	out := strings.TrimRight(string(raw), "\n") + "\n\n  # Every other setting, commented out with its default (see docs/settings.md):\n" + strings.Join(missing, "\n") + "\n"
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}
