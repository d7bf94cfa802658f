// Command wiredecode decodes records in the Confluent wire format (a 0
// byte, a 4-byte schema id, the Avro body) as kcat prints them, for kcat
// builds without Avro support (Debian's). Feed it kcat's output in this
// framing, which is safe for binary keys and values:
//
//	kcat -b localhost:9092 -t STREAM.ORDER.INSERT -C -e -q -f '%p %o %K %S %k%s' | go run ./cmd/wiredecode -registry http://localhost:8081
//
// It prints one JSON object a record: partition, offset, the key's bytes in
// hex, the schema ids and, decoded with the schemas the registry gives
// those ids, the key and the value (in Avro's JSON encoding). Without
// -registry, the key is decoded as an Avro long (what ksqlDB's bare key
// schema is) and the value is left in hex.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/linkedin/goavro/v2"
)

func main() {
	registry := flag.String("registry", "", "Schema Registry URL, to decode with the schemas the records' ids name")
	flag.Parse()
	d := &decoder{registry: strings.TrimRight(*registry, "/"), codecs: map[uint32]*goavro.Codec{}, http: &http.Client{Timeout: 10 * time.Second}}
	if err := d.run(bufio.NewReader(os.Stdin), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wiredecode:", err)
		os.Exit(1)
	}
}

// Record is one decoded record.
type Record struct {
	Partition     int32           `json:"partition"`
	Offset        int64           `json:"offset"`
	KeyHex        string          `json:"key_hex"`
	KeySchemaID   *uint32         `json:"key_schema_id,omitempty"`
	Key           json.RawMessage `json:"key,omitempty"`
	ValueSchemaID *uint32         `json:"value_schema_id,omitempty"`
	Value         json.RawMessage `json:"value,omitempty"`
	ValueHex      string          `json:"value_hex,omitempty"`
	Error         string          `json:"error,omitempty"`
}

type decoder struct {
	registry string
	codecs   map[uint32]*goavro.Codec
	http     *http.Client
}

func (d *decoder) run(in *bufio.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	for n := 1; ; n++ {
		var head [4]int64
		for i := range head {
			field, err := in.ReadString(' ')
			if errors.Is(err, io.EOF) && i == 0 && field == "" {
				return nil
			}
			if err != nil {
				return fmt.Errorf("record %d: expected kcat's -f '%%p %%o %%K %%S %%k%%s' framing: %v", n, err)
			}
			if head[i], err = strconv.ParseInt(strings.TrimSpace(field), 10, 64); err != nil {
				return fmt.Errorf("record %d: expected kcat's -f '%%p %%o %%K %%S %%k%%s' framing, got %q", n, field)
			}
		}
		key, err := readN(in, head[2])
		if err != nil {
			return fmt.Errorf("record %d: key: %v", n, err)
		}
		value, err := readN(in, head[3])
		if err != nil {
			return fmt.Errorf("record %d: value: %v", n, err)
		}
		r := Record{Partition: int32(head[0]), Offset: head[1], KeyHex: hex.EncodeToString(key)}
		d.decode(&r, key, value)
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
}

// readN reads n bytes; a NULL (n = -1) is none.
func readN(in io.Reader, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	b := make([]byte, n)
	_, err := io.ReadFull(in, b)
	return b, err
}

func (d *decoder) decode(r *Record, key, value []byte) {
	var errs []string
	if id, body, ok := wire(key); ok {
		r.KeySchemaID = &id
		if d.registry == "" {
			if v, n := binary.Varint(body); n == len(body) && n > 0 {
				r.Key = json.RawMessage(strconv.FormatInt(v, 10))
			} else {
				errs = append(errs, "the key's body is not one Avro long")
			}
		} else if j, err := d.textual(id, body); err != nil {
			errs = append(errs, "key: "+err.Error())
		} else {
			r.Key = j
		}
	} else if key != nil {
		errs = append(errs, "the key is not in the Confluent wire format")
	}
	if id, body, ok := wire(value); ok {
		r.ValueSchemaID = &id
		if d.registry == "" {
			r.ValueHex = hex.EncodeToString(body)
		} else if j, err := d.textual(id, body); err != nil {
			errs = append(errs, "value: "+err.Error())
			r.ValueHex = hex.EncodeToString(body)
		} else {
			r.Value = j
		}
	} else if value != nil {
		errs = append(errs, "the value is not in the Confluent wire format")
		r.ValueHex = hex.EncodeToString(value)
	}
	r.Error = strings.Join(errs, "; ")
}

// wire splits a Confluent wire-format record into schema id and body.
func wire(b []byte) (uint32, []byte, bool) {
	if len(b) < 5 || b[0] != 0 {
		return 0, nil, false
	}
	return binary.BigEndian.Uint32(b[1:5]), b[5:], true
}

// textual decodes body with the schema id names, into Avro's JSON encoding.
func (d *decoder) textual(id uint32, body []byte) (json.RawMessage, error) {
	c, err := d.codec(id)
	if err != nil {
		return nil, err
	}
	native, rest, err := c.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %v", id, err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("schema %d: %d bytes left over", id, len(rest))
	}
	text, err := c.TextualFromNative(nil, native)
	return text, err
}

func (d *decoder) codec(id uint32) (*goavro.Codec, error) {
	if c, ok := d.codecs[id]; ok {
		return c, nil
	}
	resp, err := d.http.Get(fmt.Sprintf("%s/schemas/ids/%d", d.registry, id))
	if err != nil {
		return nil, fmt.Errorf("fetching schema %d: %v", id, err)
	}
	defer resp.Body.Close()
	var s struct {
		Schema string `json:"schema"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching schema %d: HTTP %d %v", id, resp.StatusCode, err)
	}
	c, err := goavro.NewCodec(s.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %v", id, err)
	}
	d.codecs[id] = c
	return c, nil
}
