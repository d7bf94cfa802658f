package manifests_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The EKS overlay and the paths the job's messages name.
const (
	eksDir         = "overlays/eks"
	eksValuesFile  = eksDir + "/values.yaml"
	wifTokenVolume = "gcp-wif-token"
	wifTokenFile   = "/var/run/secrets/gcp-wif/token"
	wifConfigFile  = "/etc/gcp-wif/credential-config.json"
	credentialsEnv = "GOOGLE_APPLICATION_CREDENTIALS"
	irsaAnnotation = "eks.amazonaws.com/role-arn"
	gkeAnnotation  = "iam.gke.io/gcp-service-account"
)

// eksValues are the keys of values.yaml, the only values a user fills.
var eksValues = []string{
	"gcp-project-number", "workload-identity-pool", "workload-identity-provider",
	"service-account-impersonation-url", "irsa-role-arn", "image",
}

// eksExample fills each placeholder the overlay may hold: the tests render
// the committed overlay with these, as a user would after filling
// values.yaml.
var eksExample = map[string]string{
	"<gcp-project-number>":        "123456789012",
	"<pool-id>":                   "eks-clusters",
	"<provider-id>":               "orders-prod",
	"<gcp-service-account-email>": "ordermin-backfill@my-gcp-project.iam.gserviceaccount.com",
	"<irsa-role-arn>":             "arn:aws:iam::123456789012:role/ordermin-backfill",
	"<image>":                     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ordermin-backfill:1.4.0",
}

var (
	placeholder = regexp.MustCompile(`<[a-z0-9-]+>`)
	// A Workload Identity pool provider, as the projected token's audience
	// and the credential configuration's (pool and provider ids: 4 to 32
	// lower-case letters, digits and hyphens).
	providerAudience = regexp.MustCompile(`^//iam\.googleapis\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$`)
	impersonationURL = regexp.MustCompile(`^https://iamcredentials\.googleapis\.com/v1/projects/-/serviceAccounts/[^/@:]+@[^/@:]+\.gserviceaccount\.com:generateAccessToken$`)
	roleARN          = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)
)

// externalAccount is Google's external_account credential configuration
// with a file-sourced token; decoded strictly, so a URL, executable or AWS
// credential source, or a key's private_key, is an unknown field.
type externalAccount struct {
	Type                           string `json:"type"`
	Audience                       string `json:"audience"`
	SubjectTokenType               string `json:"subject_token_type"`
	TokenURL                       string `json:"token_url"`
	ServiceAccountImpersonationURL string `json:"service_account_impersonation_url"`
	ServiceAccountImpersonation    *struct {
		TokenLifetimeSeconds int `json:"token_lifetime_seconds"`
	} `json:"service_account_impersonation"`
	UniverseDomain   string `json:"universe_domain"`
	QuotaProjectID   string `json:"quota_project_id"`
	CredentialSource struct {
		File   string `json:"file"`
		Format struct {
			Type string `json:"type"`
		} `json:"format"`
	} `json:"credential_source"`
}

// rendered is the output of kustomize build, decoded strictly.
type rendered struct {
	dir     string
	yaml    []byte
	objects []object
}

// k8sTree copies k8s/ (the working directory) into an in-memory file
// system, under /k8s, for kustomize to build and the tests to mutate.
func k8sTree(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join("/k8s", filepath.ToSlash(p)), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// unfilled reports whether values.yaml holds every placeholder, as
// committed, and names one it lacks.
func unfilled(values string) (bool, string) {
	for _, p := range sortedKeys(eksExample) {
		if !strings.Contains(values, p) {
			return false, p
		}
	}
	return true, ""
}

// fillValues fills values.yaml with eksExample when it holds every one of
// its placeholders, as committed, and reports whether it did; a values.yaml
// a user filled, even in part, is left as it is, for checkEKS to name what
// is missing.
func fillValues(t *testing.T, mem filesys.FileSystem) bool {
	t.Helper()
	file := path.Join("/k8s", eksValuesFile)
	raw, err := mem.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	values := string(raw)
	if ok, missing := unfilled(values); !ok {
		t.Logf("%s is filled (%s missing): checking its own values", eksValuesFile, missing)
		return false
	}
	for p, v := range eksExample {
		values = strings.ReplaceAll(values, p, v)
	}
	if err := mem.WriteFile(file, []byte(values)); err != nil {
		t.Fatal(err)
	}
	return true
}

// render runs kustomize build on dir (relative to k8s/) in process and
// decodes each resource strictly.
func render(mem filesys.FileSystem, dir string) (*rendered, error) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, path.Join("/k8s", dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out := &rendered{dir: dir}
	for _, r := range rm.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		obj, err := decode(doc)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		out.yaml = append(append(out.yaml, "---\n"...), doc...)
		out.objects = append(out.objects, object{file: "kustomize build " + dir, obj: obj})
	}
	return out, nil
}

// checkEKS returns what is wrong with a rendered EKS overlay: placeholders
// left, the projected token and the credential configuration disagreeing,
// a Google key, the ServiceAccount's annotations, MSK without IAM.
func checkEKS(r *rendered) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	left := map[string]bool{}
	for _, p := range placeholder.FindAll(r.yaml, -1) {
		left[string(p)] = true
	}
	for _, p := range sortedKeys(left) {
		add("placeholder %s left unreplaced in the rendered %s: fill it in %s", p, r.dir, eksValuesFile)
	}

	m := &manifests{objects: r.objects, resources: map[string]bool{}, patches: map[string]bool{}}
	for _, o := range r.objects {
		for name, value := range stringValues(o.obj) {
			if googleKey(value) {
				add("%s holds a Google service-account key (%s): BigQuery is reached without a key, through the projected token", kindName(o.obj), name)
			}
		}
	}
	jobs := m.jobs()
	if len(jobs) != 1 {
		add("%d Jobs rendered, want 1", len(jobs))
		return probs
	}
	pod := jobs[0].Spec.Template.Spec
	ci := slices.IndexFunc(pod.Containers, func(c corev1.Container) bool { return c.Name == containerName })
	if ci < 0 {
		add("no container %s", containerName)
		return probs
	}
	c := pod.Containers[ci]

	// The projected ServiceAccount token, for the pool provider.
	audience, tokenFile := "", ""
	vi := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == wifTokenVolume })
	var sat *corev1.ServiceAccountTokenProjection
	if vi >= 0 && pod.Volumes[vi].Projected != nil {
		for _, s := range pod.Volumes[vi].Projected.Sources {
			if s.ServiceAccountToken != nil {
				if sat != nil {
					add("volume %s projects two ServiceAccount tokens", wifTokenVolume)
				}
				sat = s.ServiceAccountToken
			}
		}
	}
	if sat == nil {
		add("no projected volume %s with a serviceAccountToken: the Google auth library has no token to exchange", wifTokenVolume)
	} else {
		audience = sat.Audience
		if !providerAudience.MatchString(audience) {
			add("the projected token's audience %q is not a Workload Identity pool provider (//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER)", audience)
		}
		switch e := sat.ExpirationSeconds; {
		case e == nil:
			add("the projected token has no expirationSeconds")
		case *e < 600 || *e > 86400:
			add("the projected token's expirationSeconds %d: Kubernetes takes at least 600, Google's STS at most 86400", *e)
		}
		if mount := mountOf(c, wifTokenVolume); mount == nil {
			add("container %s does not mount volume %s", c.Name, wifTokenVolume)
		} else {
			tokenFile = path.Join(mount.MountPath, sat.Path)
			if !mount.ReadOnly {
				add("volume %s is mounted read-write", wifTokenVolume)
			}
			if tokenFile != wifTokenFile {
				add("the projected token is at %s, want %s (the path the job's messages name)", tokenFile, wifTokenFile)
			}
		}
	}
	// With fsGroup the kubelet makes the token file 0640, group fsGroup;
	// without it (and without one runAsUser for every container) 0600 root's.
	if sc := pod.SecurityContext; sc == nil || sc.FSGroup == nil {
		add("the pod sets no fsGroup: the non-root job may not read the projected token")
	}

	// The credential configuration, through Application Default Credentials.
	env, errs := resolveEnv(m, c)
	for _, err := range errs {
		add("%v", err)
	}
	if v := env[credentialsEnv].value; v != wifConfigFile {
		add("%s = %q, want %s", credentialsEnv, v, wifConfigFile)
	}
	if v := env[envName("bigquery.credentials_file")].value; v != "" {
		add("%s = %s: a key file; on EKS BigQuery's credentials are the external_account configuration in %s", envName("bigquery.credentials_file"), v, credentialsEnv)
	}
	text, err := configMapFile(m, pod, c, env[credentialsEnv].value)
	if err != nil {
		add("%s: %v", credentialsEnv, err)
		return probs
	}
	var cfg externalAccount
	strict, err := kjson.UnmarshalStrict([]byte(text), &cfg, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err = errors.Join(append([]error{err}, strict...)...); err != nil {
		add("the credential configuration does not decode as a file-sourced external_account: %v", err)
		return probs
	}
	for _, f := range []struct{ name, got, want string }{
		{"type", cfg.Type, "external_account"},
		{"subject_token_type", cfg.SubjectTokenType, "urn:ietf:params:oauth:token-type:jwt"},
		{"token_url", cfg.TokenURL, "https://sts.googleapis.com/v1/token"},
		{"credential_source.format.type", cfg.CredentialSource.Format.Type, "text"},
	} {
		if f.got != f.want {
			add("the credential configuration's %s is %q, want %q", f.name, f.got, f.want)
		}
	}
	if cfg.Audience != audience {
		add("the credential configuration's audience %q differs from the projected token's %q: Google's STS refuses a token not issued for its provider", cfg.Audience, audience)
	}
	if cfg.CredentialSource.File != tokenFile {
		add("the credential configuration's credential_source.file %q is not the projected token %q", cfg.CredentialSource.File, tokenFile)
	}
	if u := cfg.ServiceAccountImpersonationURL; u != "" && !impersonationURL.MatchString(u) {
		add("service_account_impersonation_url %q is not https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken (or \"\" for no impersonation)", u)
	}

	// One ServiceAccount: IRSA for MSK, nothing for GKE.
	sa := m.serviceAccount(pod.ServiceAccountName)
	if sa == nil {
		add("no ServiceAccount %q rendered", pod.ServiceAccountName)
	} else {
		switch arn, ok := sa.Annotations[irsaAnnotation]; {
		case !ok || arn == "":
			add("ServiceAccount %s has no %s annotation: MSK IAM (IRSA) gets no AWS role", sa.Name, irsaAnnotation)
		case !roleARN.MatchString(arn):
			add("ServiceAccount %s: %s %q is not an IAM role ARN", sa.Name, irsaAnnotation, arn)
		}
		if v, ok := sa.Annotations[gkeAnnotation]; ok {
			add("ServiceAccount %s keeps %s=%s: EKS has no GKE metadata server; BigQuery's identity is the federated principal or the impersonated service account", sa.Name, gkeAnnotation, v)
		}
	}
	if v := env[envName("kafka.sasl_mechanism")].value; v != "AWS_MSK_IAM" {
		add("%s = %q, want AWS_MSK_IAM (MSK through IRSA)", envName("kafka.sasl_mechanism"), v)
	}
	if v := env[envName("kafka.sasl_password_file")].value; v != "" {
		add("%s = %s: MSK IAM needs no SASL password", envName("kafka.sasl_password_file"), v)
	}
	return probs
}

// mountOf is the container's mount of a volume, or nil.
func mountOf(c corev1.Container, volume string) *corev1.VolumeMount {
	for i, mount := range c.VolumeMounts {
		if mount.Name == volume {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// configMapFile is the content of a file the container sees on a
// ConfigMap volume.
func configMapFile(m *manifests, pod corev1.PodSpec, c corev1.Container, file string) (string, error) {
	for _, mount := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(mount.MountPath, "/")+"/")
		if !ok {
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
		if i < 0 || pod.Volumes[i].ConfigMap == nil {
			return "", fmt.Errorf("%s is on volume %q, not a ConfigMap", file, mount.Name)
		}
		src := pod.Volumes[i].ConfigMap
		key := path.Join(mount.SubPath, rel)
		if len(src.Items) > 0 {
			j := slices.IndexFunc(src.Items, func(it corev1.KeyToPath) bool { return it.Path == key })
			if j < 0 {
				return "", fmt.Errorf("%s: ConfigMap volume %q projects no %s", file, mount.Name, key)
			}
			key = src.Items[j].Key
		}
		cm := m.configMap(src.Name)
		if cm == nil {
			return "", fmt.Errorf("%s: no ConfigMap %q rendered", file, src.Name)
		}
		text, ok := cm.Data[key]
		if !ok {
			return "", fmt.Errorf("%s: ConfigMap %q has no key %q", file, src.Name, key)
		}
		return text, nil
	}
	return "", fmt.Errorf("%q is on no volume mount", file)
}

// stringValues are the values of a Secret or ConfigMap, by key.
func stringValues(obj any) map[string]string {
	out := map[string]string{}
	switch o := obj.(type) {
	case *corev1.Secret:
		for k, v := range o.Data {
			out[k] = string(v)
		}
		for k, v := range o.StringData {
			out[k] = v
		}
	case *corev1.ConfigMap:
		for k, v := range o.Data {
			out[k] = v
		}
		for k, v := range o.BinaryData {
			out[k] = string(v)
		}
	}
	return out
}

// googleKey reports whether a value looks like a Google service-account key
// (JSON of type service_account, or any private key).
func googleKey(v string) bool {
	var key struct {
		Type string `json:"type"`
	}
	return strings.Contains(v, "PRIVATE KEY-----") || strings.Contains(v, `"private_key"`) ||
		json.Unmarshal([]byte(v), &key) == nil && key.Type == "service_account"
}

func kindName(obj any) string {
	switch o := obj.(type) {
	case *corev1.Secret:
		return "Secret " + o.Name
	case *corev1.ConfigMap:
		return "ConfigMap " + o.Name
	}
	return fmt.Sprintf("%T", obj)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The values a user fills are few, named and in one file: values.yaml holds
// exactly eksValues, kustomize leaves it out of its output, every
// placeholder in the overlay is one eksExample fills, and the README names
// each value.
func TestEKSValuesAreFewAndNamed(t *testing.T) {
	raw, err := os.ReadFile(eksValuesFile)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := decode(raw)
	if err != nil {
		t.Fatalf("%s: %v", eksValuesFile, err)
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		t.Fatalf("%s holds a %T, want a ConfigMap", eksValuesFile, obj)
	}
	if cm.Annotations[localConfig] != "true" {
		t.Errorf("%s lacks the annotation %s: \"true\": kustomize would apply it", eksValuesFile, localConfig)
	}
	if got := sortedKeys(cm.Data); !slices.Equal(got, slices.Sorted(slices.Values(eksValues))) {
		t.Errorf("%s holds %v, want %v", eksValuesFile, got, eksValues)
	}
	files, err := os.ReadDir(eksDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		text, err := os.ReadFile(path.Join(eksDir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range placeholder.FindAllString(string(text), -1) {
			if _, ok := eksExample[p]; !ok {
				t.Errorf("%s/%s: placeholder %s is not one of values.yaml's (%v)", eksDir, f.Name(), p, sortedKeys(eksExample))
			}
		}
	}
	eks, err := os.ReadFile("../docs/eks.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range eksValues {
		if !strings.Contains(string(eks), "`"+v+"`") {
			t.Errorf("docs/eks.md does not name the value `%s`", v)
		}
	}
}

// The committed overlay, filled as a user fills values.yaml, renders to a
// Job whose projected token, credential configuration and ServiceAccount
// agree, with every placeholder replaced; the Job keeps every invariant of
// the base. So does the overlay on top of the sharded one.
func TestEKSOverlayRenders(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		name := "base"
		if sharded {
			name = "sharded"
		}
		t.Run(name, func(t *testing.T) {
			mem := k8sTree(t)
			fillValues(t, mem)
			if sharded {
				mutate(t, mem, "kustomization.yaml", "  - ../../base\n", "  - ../sharded\n")
			}
			r, err := render(mem, eksDir)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range checkEKS(r) {
				t.Error(p)
			}
			m := &manifests{objects: r.objects, resources: map[string]bool{}, patches: map[string]bool{}}
			for _, job := range m.jobs() {
				if got := job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion; got != sharded {
					t.Errorf("Indexed Job: %v, want %v", got, sharded)
				}
				pod := job.Spec.Template.Spec
				checkPodFailurePolicy(t, job.Spec.PodFailurePolicy)
				for _, c := range pod.Containers {
					checkSecurity(t, pod, c)
					checkResources(t, c)
					checkEnv(t, m, job, c)
				}
			}
			for _, cm := range m.configMaps() {
				for key, value := range cm.Data {
					if s, ok := settingOf(key); ok {
						if err := checkValue(s, value); err != nil {
							t.Errorf("ConfigMap %s: %s: %v", cm.Name, key, err)
						}
					}
				}
			}
		})
	}
}

// Unfilled, the overlay still renders, and checkEKS names each placeholder.
func TestEKSOverlayNamesWhatIsUnfilled(t *testing.T) {
	raw, err := os.ReadFile(eksValuesFile)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := unfilled(string(raw)); !ok {
		t.Skipf("%s is filled", eksValuesFile)
	}
	r, err := render(k8sTree(t), eksDir)
	if err != nil {
		t.Fatal(err)
	}
	probs := strings.Join(checkEKS(r), "\n")
	for _, p := range sortedKeys(eksExample) {
		if !strings.Contains(probs, "placeholder "+p+" left unreplaced") {
			t.Errorf("unfilled %s not named; checkEKS said:\n%s", p, probs)
		}
	}
}

// mutate replaces old by new in a file of the overlay, and fails when old is
// not there (a mutation that no longer applies proves nothing).
func mutate(t *testing.T, mem filesys.FileSystem, file, old, new string) {
	t.Helper()
	file = path.Join("/k8s", eksDir, file)
	raw, err := mem.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), old) {
		t.Fatalf("mutation does not apply: %s holds no %q", file, old)
	}
	if err := mem.WriteFile(file, []byte(strings.Replace(string(raw), old, new, 1))); err != nil {
		t.Fatal(err)
	}
}

// Each check of checkEKS fails on a manifest broken the way a user or a
// later change could break it.
func TestEKSChecksCatchBrokenManifests(t *testing.T) {
	type edit struct{ file, old, new string }
	for _, tc := range []struct {
		name  string
		edits []edit
		want  string
	}{
		{"a value left unfilled",
			[]edit{{"values.yaml", "workload-identity-provider: orders-prod", "workload-identity-provider: <provider-id>"}},
			"placeholder <provider-id> left unreplaced"},
		{"a replacement that misses its target",
			[]edit{{"kustomization.yaml", "kind: ServiceAccount\n          name: ordermin-backfill\n", "kind: ServiceAccount\n          name: backfill\n"}},
			"placeholder <irsa-role-arn> left unreplaced"},
		{"the audience of another provider in the credential configuration",
			[]edit{{"kustomization.yaml", "name: ordermin-backfill-gcp-wif\n        fieldPaths:\n          - data.[credential-config.json]\n        options:\n          delimiter: '\"'\n          index: 7",
				"name: ordermin-backfill-gcp-wif-old\n        fieldPaths:\n          - data.[credential-config.json]\n        options:\n          delimiter: '\"'\n          index: 7"},
				{"credential-config.json", "<gcp-project-number>/locations/global/workloadIdentityPools/<pool-id>/providers/<provider-id>",
					"123456789012/locations/global/workloadIdentityPools/eks-clusters/providers/orders-staging"}},
			"the credential configuration's audience \"//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks-clusters/providers/orders-staging\" differs from the projected token's"},
		{"a credential configuration from gcloud, keys in another order",
			[]edit{{"credential-config.json", "{\n", "{\n  \"universe_domain\": \"googleapis.com\",\n"}},
			"differs from the projected token's"},
		{"the token mounted elsewhere",
			[]edit{{"job-wif.yaml", "mountPath: /var/run/secrets/gcp-wif\n", "mountPath: /var/run/secrets/google\n"}},
			"credential_source.file \"/var/run/secrets/gcp-wif/token\" is not the projected token \"/var/run/secrets/google/token\""},
		{"credential_source.file naming the IRSA token",
			[]edit{{"credential-config.json", "/var/run/secrets/gcp-wif/token", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}},
			"credential_source.file \"/var/run/secrets/eks.amazonaws.com/serviceaccount/token\" is not the projected token"},
		{"GOOGLE_APPLICATION_CREDENTIALS naming another file",
			[]edit{{"job-wif.yaml", "value: /etc/gcp-wif/credential-config.json", "value: /etc/gcp-wif/credentials.json"}},
			"GOOGLE_APPLICATION_CREDENTIALS = \"/etc/gcp-wif/credentials.json\", want /etc/gcp-wif/credential-config.json"},
		{"a Secret holding a Google key",
			[]edit{{"kustomization.yaml", "\nreplacements:\n", "\nsecretGenerator:\n  - name: gcp-key\n    literals:\n" +
				"      - 'gcp-credentials.json={\"type\": \"service_account\", \"private_key_id\": \"x\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nx\\n-----END PRIVATE KEY-----\\n\"}'\n" +
				"\nreplacements:\n"}},
			"holds a Google service-account key (gcp-credentials.json)"},
		{"bigquery.credentials_file pointing at a key",
			[]edit{{"configmap.yaml", "  BACKFILL_KAFKA_SASL_MECHANISM: AWS_MSK_IAM\n", "  BACKFILL_KAFKA_SASL_MECHANISM: AWS_MSK_IAM\n  BACKFILL_BIGQUERY_CREDENTIALS_FILE: /var/run/secrets/backfill/gcp-credentials.json\n"}},
			"BACKFILL_BIGQUERY_CREDENTIALS_FILE = /var/run/secrets/backfill/gcp-credentials.json: a key file"},
		{"the IRSA annotation dropped",
			[]edit{{"serviceaccount.yaml", "eks.amazonaws.com/role-arn: <irsa-role-arn> # from values.yaml", "eks.amazonaws.com/role-arn: null"},
				{"kustomization.yaml", "fieldPath: data.irsa-role-arn\n    targets:\n      - select:\n          kind: ServiceAccount", "fieldPath: data.irsa-role-arn\n    targets:\n      - select:\n          kind: Secret"}},
			"has no eks.amazonaws.com/role-arn annotation"},
		{"the GKE annotation kept",
			[]edit{{"serviceaccount.yaml", "    iam.gke.io/gcp-service-account: null\n", ""}},
			"keeps iam.gke.io/gcp-service-account"},
		{"no fsGroup",
			[]edit{{"job-wif.yaml", "    spec:\n      containers:", "    spec:\n      securityContext:\n        fsGroup: null\n      containers:"}},
			"the pod sets no fsGroup"},
		{"a token without expiry",
			[]edit{{"job-wif.yaml", "expirationSeconds: 3600", "expirationSeconds: null"}},
			"the projected token has no expirationSeconds"},
		{"an impersonation URL without the service account",
			[]edit{{"values.yaml", "serviceAccounts/ordermin-backfill@my-gcp-project.iam.gserviceaccount.com:", "serviceAccounts/:"}},
			"service_account_impersonation_url \"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/:generateAccessToken\" is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := k8sTree(t)
			if !fillValues(t, mem) {
				t.Skipf("%s is filled: the broken manifests are made from the committed overlay", eksValuesFile)
			}
			for _, e := range tc.edits {
				mutate(t, mem, e.file, e.old, e.new)
			}
			r, err := render(mem, eksDir)
			if err != nil {
				t.Fatal(err)
			}
			probs := checkEKS(r)
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("checkEKS did not say %q; it said:\n%s", tc.want, strings.Join(probs, "\n"))
			}
			t.Logf("checkEKS:\n%s", strings.Join(probs, "\n"))
		})
	}
}
