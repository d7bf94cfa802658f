package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ordermin/ordermin-backfill/internal/httpc"
)

// ErrHelp is returned by Load when -h or --help was asked for; the usage
// has been written to the output.
var ErrHelp = flag.ErrHelp

// removed names settings that no longer exist, with what replaces them;
// setting one is an error that says so.
var removed = map[string]string{
	"ksqldb.verify_timeout": "verification no longer waits on a clock but until ksqlDB's table query has committed past every record the job wrote; " +
		"set ksqldb.stall_timeout instead: how long that query may make no progress before the run fails",
}

// Load reads the settings: defaults, then the YAML file (--config or
// BACKFILL_CONFIG), then BACKFILL_* environment variables, then flags; then
// reads password files and validates. Usage goes to out on -h. Every error
// names the setting and where its value came from.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Default()
	c.origins = map[string]string{}
	all := settings(&c)

	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	// Parse errors are printed below with secrets redacted, not by the flag package.
	fs.SetOutput(io.Discard)
	flagValues := map[string][]string{}
	fs.StringVar(&c.File, "config", "", "YAML settings file (env BACKFILL_CONFIG)")
	for _, s := range all {
		name := s.name
		if _, isBool := s.ptr.(*bool); isBool {
			fs.Var(boolFlag{name: name, values: flagValues}, flagName(name), s.usage+" (env "+Env(name)+")")
			continue
		}
		fs.Func(flagName(name), s.usage+" (env "+Env(name)+")", func(v string) error {
			flagValues[name] = append(flagValues[name], v)
			return nil
		})
	}
	for name, why := range removed {
		// Accepted only to be refused with what replaces it; Usage omits it.
		fs.Func(flagName(name), "removed", func(string) error { return fmt.Errorf("%s was removed: %s", name, why) })
	}
	// The flag package calls Usage itself on -h; it is printed once, below.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			Usage(out)
			return c, ErrHelp
		}
		msg := err.Error()
		for _, a := range args {
			if r := redactArg(a); r != a {
				msg = strings.ReplaceAll(msg, a, r)
			}
		}
		return c, fmt.Errorf("%s (see --help)", msg)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (settings are flags like --kafka-brokers=host:9092)", redactArg(fs.Arg(0)))
	}
	if c.File == "" {
		c.File = getenv("BACKFILL_CONFIG")
	}

	fileSetShard := false
	if c.File != "" {
		fileValues, err := readFile(c.File)
		if err != nil {
			return c, err
		}
		known := map[string]bool{}
		for _, s := range all {
			known[s.name] = true
		}
		var unknown []string
		for k := range fileValues {
			if why, ok := removed[k]; ok {
				return c, fmt.Errorf("config file %s: %s was removed: %s", c.File, k, why)
			}
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return c, fmt.Errorf("config file %s: unknown setting %s", c.File, strings.Join(unknown, ", "))
		}
		_, fileSetShard = fileValues["shard.index"]
		for _, s := range all {
			if err := s.set(fileValues[s.name]); err != nil {
				return c, fmt.Errorf("config file %s: %s: %w", c.File, s.name, err)
			}
			if _, ok := fileValues[s.name]; ok {
				c.origins[s.name] = "config file " + c.File
			}
		}
	}
	// An Indexed Job's pod: its index is the shard. A shard.index set
	// anywhere else must agree with it, or every pod could read one shard.
	jobIndex := -1
	if v := getenv("JOB_COMPLETION_INDEX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("environment JOB_COMPLETION_INDEX=%q is not a shard index (a whole number from 0)", v)
		}
		if fileSetShard && c.Shard.Index != n {
			return c, fmt.Errorf("config file %s: shard.index=%d disagrees with JOB_COMPLETION_INDEX=%d of this Indexed Job's pod: remove shard.index and let the Job set it", c.File, c.Shard.Index, n)
		}
		jobIndex, c.Shard.Index = n, n
		c.origins["shard.index"] = fmt.Sprintf("JOB_COMPLETION_INDEX=%d of this Indexed Job's pod", n)
	}
	for name, why := range removed {
		if getenv(Env(name)) != "" {
			return c, fmt.Errorf("environment %s: %s was removed: %s", Env(name), name, why)
		}
	}
	for _, s := range all {
		if v := getenv(Env(s.name)); v != "" {
			if err := s.set([]string{v}); err != nil {
				return c, fmt.Errorf("environment %s: %w", Env(s.name), err)
			}
			c.origins[s.name] = "env " + Env(s.name)
		}
	}
	for _, s := range all {
		if err := s.set(flagValues[s.name]); err != nil {
			return c, fmt.Errorf("flag --%s: %w", flagName(s.name), err)
		}
		if len(flagValues[s.name]) > 0 {
			c.origins[s.name] = "flag --" + flagName(s.name)
		}
	}
	if jobIndex >= 0 && c.Shard.Index != jobIndex {
		return c, fmt.Errorf("shard.index=%d (from %s) disagrees with JOB_COMPLETION_INDEX=%d of this Indexed Job's pod: remove shard.index and let the Job set it", c.Shard.Index, c.origin("shard.index"), jobIndex)
	}
	if c.Kafka.AWSRegion == "" {
		c.Kafka.AWSRegion = getenv("AWS_REGION") // set by EKS IRSA and the AWS tooling
	}
	if err := c.resolveSecrets(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Usage writes the command's usage: every setting with its flag, env
// name and default, in documentation order.
func Usage(out io.Writer) {
	var b strings.Builder
	b.WriteString("Usage: backfill [run|check|version|help] [flags]\n\n" +
		"Settings (flag > env > YAML file > default); each is also a key of the YAML file,\n" +
		"kafka.brokers as kafka: {brokers: ...}. Exit codes and details: README.md.\n\n" +
		"  --config FILE\n      YAML settings file (env BACKFILL_CONFIG)\n")
	for _, d := range Reference() {
		fmt.Fprintf(&b, "  %s\n      %s (env %s)", d.Flag, d.Usage, d.Env)
		if d.Default != "" {
			fmt.Fprintf(&b, " (default %s)", d.Default)
		}
		b.WriteString("\n")
	}
	_, _ = io.WriteString(out, b.String())
}

// boolFlag lets a boolean setting be given as --flag or --flag=false.
type boolFlag struct {
	name   string
	values map[string][]string
}

func (b boolFlag) String() string { return "" }
func (b boolFlag) Set(v string) error {
	b.values[b.name] = append(b.values[b.name], v)
	return nil
}
func (b boolFlag) IsBoolFlag() bool { return true }

// readFile flattens a YAML file into dotted setting names. Scalars become
// one value; sequences several; a mapping under kafka.properties or
// mapping.value_columns becomes key=value items.
func readFile(path string) (map[string][]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string][]string{}, nil
		}
		return nil, fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	out := map[string][]string{}
	if len(root.Content) == 0 {
		return out, nil
	}
	if err := flatten(root.Content[0], "", out); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return out, nil
}

// keyValueMaps are settings whose YAML form is a mapping of free keys.
var keyValueMaps = map[string]bool{"kafka.properties": true, "mapping.value_columns": true}

func flatten(n *yaml.Node, prefix string, out map[string][]string) error {
	switch n.Kind {
	case yaml.MappingNode:
		if keyValueMaps[prefix] {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: %s.%s must be a single value", v.Line, prefix, k.Value)
				}
				out[prefix] = append(out[prefix], k.Value+"="+v.Value)
			}
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := n.Content[i].Value
			if prefix != "" {
				name = prefix + "." + name
			}
			if err := flatten(n.Content[i+1], name, out); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %s must be a list of single values", item.Line, prefix)
			}
			out[prefix] = append(out[prefix], item.Value)
		}
	case yaml.ScalarNode:
		if prefix == "" {
			return fmt.Errorf("the file must be a mapping of settings")
		}
		if n.Tag == "!!null" {
			return nil
		}
		out[prefix] = []string{n.Value}
	default:
		return fmt.Errorf("line %d: %s: unsupported YAML (anchors and aliases are not)", n.Line, prefix)
	}
	return nil
}

// resolveSecrets reads password files and moves credentials out of URLs.
func (c *Config) resolveSecrets() error {
	for _, p := range []struct {
		name string
		val  *Secret
		file string
	}{
		{"kafka.sasl_password", &c.Kafka.SASLPassword, c.Kafka.SASLPasswordFile},
		{"schema_registry.password", &c.SchemaRegistry.Password, c.SchemaRegistry.PasswordFile},
		{"ksqldb.password", &c.KsqlDB.Password, c.KsqlDB.PasswordFile},
	} {
		if p.file == "" {
			continue
		}
		if *p.val != "" {
			return fmt.Errorf("%s and %s_file are both set: keep one", p.name, p.name)
		}
		data, err := os.ReadFile(p.file)
		if err != nil {
			return fmt.Errorf("%s_file: %w", p.name, err)
		}
		*p.val = Secret(strings.TrimRight(string(data), "\r\n"))
	}
	var err error
	if c.SchemaRegistry.URL, err = moveUserinfo("schema_registry", c.SchemaRegistry.URL, &c.SchemaRegistry.Username, &c.SchemaRegistry.Password); err != nil {
		return err
	}
	c.KsqlDB.URL, err = moveUserinfo("ksqldb", c.KsqlDB.URL, &c.KsqlDB.Username, &c.KsqlDB.Password)
	return err
}

// redactArg hides the value of a password-like argument and the password
// in a URL, for error messages. Which arguments hold a password is told by
// the flag's name, which only config knows; a URL is redacted as httpc
// redacts every URL.
func redactArg(a string) string {
	lower := strings.ToLower(a)
	name, value, hasValue := strings.Cut(a, "=")
	switch {
	case hasValue && strings.Contains(strings.ToLower(name), "password") &&
		!strings.HasSuffix(strings.ToLower(name), "file"):
		return name + "=" + httpc.Redacted
	case !hasValue && strings.Contains(lower, "password"):
		return httpc.Redacted
	case strings.Contains(a, "://") && strings.Contains(a, "@"):
		if hasValue && strings.Contains(value, "://") {
			return name + "=" + httpc.RedactURL(value)
		}
		return httpc.RedactURL(a)
	}
	return a
}
