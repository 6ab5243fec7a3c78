package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"go.yaml.in/yaml/v3"

	"github.com/berth-dev/berth/schema/redact"
)

// This file implements the part of the SOPS format (github.com/getsops/sops/v3 at v3.13.3: sops.go, aes/cipher.go,
// stores/stores.go, stores/yaml, stores/json) that decryption needs. A document is a list of branches (YAML
// documents); a branch is an ordered map; values are ordered maps, lists or scalars (string, int, float64, bool,
// time.Time, nil), as the sops stores load them. Comments are left out: sops neither hashes them nor needs them
// to decrypt values.

// Formats of a SOPS file, chosen by extension as sops does.
const (
	formatYAML   = "yaml"
	formatJSON   = "json"
	formatBinary = "binary"
)

// item is one entry of an ordered map.
type item struct {
	key string
	val any
}

// omap is an ordered map, as YAML and JSON documents keep their keys.
type omap []item

// comment is a value sops stored as an encrypted comment (type:comment): dropped, never hashed.
type comment struct{}

// metadata is the "sops" entry of a file (stores/stores.go's metadata, the fields decryption reads).
type metadata struct {
	ShamirThreshold         int        `json:"shamir_threshold"`
	KeyGroups               []keyGroup `json:"key_groups"`
	LastModified            string     `json:"lastmodified"`
	MAC                     string     `json:"mac"`
	UnencryptedSuffix       string     `json:"unencrypted_suffix"`
	EncryptedSuffix         string     `json:"encrypted_suffix"`
	UnencryptedRegex        string     `json:"unencrypted_regex"`
	EncryptedRegex          string     `json:"encrypted_regex"`
	UnencryptedCommentRegex string     `json:"unencrypted_comment_regex"`
	EncryptedCommentRegex   string     `json:"encrypted_comment_regex"`
	MACOnlyEncrypted        bool       `json:"mac_only_encrypted"`
	Version                 string     `json:"version"`
	keyGroup
}

// keyGroup holds the master keys of one group; only age is used, the others are counted for errors.
type keyGroup struct {
	Age     []ageKey `json:"age"`
	PGP     []any    `json:"pgp"`
	KMS     []any    `json:"kms"`
	GCPKMS  []any    `json:"gcp_kms"`
	AzureKV []any    `json:"azure_kv"`
	Vault   []any    `json:"hc_vault"`
	HCKMS   []any    `json:"hckms"`
}

type ageKey struct {
	Recipient string `json:"recipient"`
	Enc       string `json:"enc"`
}

func (g keyGroup) others() []string {
	var out []string
	for _, k := range []struct {
		name string
		n    int
	}{{"pgp", len(g.PGP)}, {"kms", len(g.KMS)}, {"gcp_kms", len(g.GCPKMS)}, {"azure_kv", len(g.AzureKV)},
		{"hc_vault", len(g.Vault)}, {"hckms", len(g.HCKMS)}} {
		if k.n > 0 {
			out = append(out, k.name)
		}
	}
	return out
}

// macOnlyEncryptedInit starts the MAC of a file with mac_only_encrypted (sops.MACOnlyEncryptedInitialization).
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47,
	0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// defaultUnencryptedSuffix applies when a file names no encryption rule (sops.DefaultUnencryptedSuffix).
const defaultUnencryptedSuffix = "_unencrypted"

// document is a loaded SOPS file: its branches (still encrypted until decrypt) and its metadata.
type document struct {
	format   string
	branches []omap
	meta     metadata
	// unencrypted and encrypted are the compiled regexes of the file's rules, when it has one.
	unencrypted, encrypted *regexp.Regexp
}

func formatOf(name string) string {
	switch path.Ext(name) {
	case ".yaml", ".yml":
		return formatYAML
	case ".json":
		return formatJSON
	default:
		return formatBinary
	}
}

// parseFile loads a SOPS file the way its sops store does and checks its metadata.
func parseFile(name string, raw []byte) (*document, error) {
	doc := &document{format: formatOf(name)}
	switch ext := path.Ext(name); {
	case ext == ".env" || ext == ".ini":
		f := map[string]string{".env": "dotenv", ".ini": "INI"}[ext]
		return nil, fmt.Errorf("%w: the %s format is not supported; encrypt the secret as YAML or JSON", ErrUnsupported, f)
	case doc.format == formatYAML:
		bs, err := loadYAML(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: not valid YAML: %s", ErrNotSOPS, oneLine(err))
		}
		doc.branches = bs
	default:
		b, err := loadJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: not valid JSON (sops writes JSON for .json and binary files): %s", ErrNotSOPS, oneLine(err))
		}
		doc.branches = []omap{b}
	}
	// stores.ExtractMetadata: the first branch's "sops" entry; every branch loses its "sops" entries.
	var metaVal any
	found := false
	for bi, b := range doc.branches {
		kept := b[:0]
		for _, it := range b {
			if it.key != "sops" {
				kept = append(kept, it)
				continue
			}
			if bi == 0 {
				if found {
					return nil, fmt.Errorf("%w: two sops entries", ErrNotSOPS)
				}
				found, metaVal = true, it.val
			}
		}
		doc.branches[bi] = kept
	}
	if !found {
		return nil, fmt.Errorf("%w: it has no sops metadata (encrypt it with sops first)", ErrNotSOPS)
	}
	mm, ok := metaVal.(omap)
	if !ok {
		return nil, fmt.Errorf("%w: its sops entry is not a mapping", ErrNotSOPS)
	}
	jb, err := json.Marshal(plain(mm))
	if err != nil {
		return nil, fmt.Errorf("%w: its sops metadata cannot be read", ErrNotSOPS)
	}
	if err := json.Unmarshal(jb, &doc.meta); err != nil {
		return nil, fmt.Errorf("%w: its sops metadata is malformed: %v", ErrNotSOPS, err)
	}
	m := &doc.meta
	if m.MAC == "" && m.LastModified == "" {
		return nil, fmt.Errorf("%w: its sops metadata has no mac and no lastmodified", ErrNotSOPS)
	}
	rules := 0
	for _, r := range []string{m.UnencryptedSuffix, m.EncryptedSuffix, m.UnencryptedRegex, m.EncryptedRegex,
		m.UnencryptedCommentRegex, m.EncryptedCommentRegex} {
		if r != "" {
			rules++
		}
	}
	switch {
	case rules > 1:
		return nil, fmt.Errorf("%w: it names more than one encryption rule", ErrNotSOPS)
	case rules == 0:
		m.UnencryptedSuffix = defaultUnencryptedSuffix
	case m.UnencryptedCommentRegex != "" || m.EncryptedCommentRegex != "":
		return nil, fmt.Errorf("%w: unencrypted_comment_regex and encrypted_comment_regex are not supported", ErrUnsupported)
	}
	if m.UnencryptedRegex != "" {
		if doc.unencrypted, err = regexp.Compile(m.UnencryptedRegex); err != nil {
			return nil, fmt.Errorf("%w: its unencrypted_regex does not compile", ErrNotSOPS)
		}
	}
	if m.EncryptedRegex != "" {
		if doc.encrypted, err = regexp.Compile(m.EncryptedRegex); err != nil {
			return nil, fmt.Errorf("%w: its encrypted_regex does not compile", ErrNotSOPS)
		}
	}
	return doc, nil
}

// oneLine is a parser's error on one line, redacted and bounded.
func oneLine(err error) string {
	return redact.Body([]byte(strings.Join(strings.Fields(err.Error()), " ")), 300)
}

// plain turns a loaded value into encoding/json's generic values, for decoding metadata.
func plain(v any) any {
	switch v := v.(type) {
	case omap:
		m := make(map[string]any, len(v))
		for _, it := range v {
			m[it.key] = plain(it.val)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plain(x)
		}
		return out
	case time.Time:
		return v.Format(time.RFC3339)
	}
	return v
}

// loadYAML loads every document of a YAML file as sops's YAML store does (without comments).
func loadYAML(in []byte) ([]omap, error) {
	if len(in) > 0 {
		// As sops: this decode rejects duplicate keys.
		if err := yaml.NewDecoder(bytes.NewReader(in)).Decode(make(map[string]any)); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	var out []omap
	l := &yamlLoader{left: maxValues}
	dec := yaml.NewDecoder(bytes.NewReader(in))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := l.branch(&n, nil, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
}

// maxDepth bounds the nesting of a SOPS document: it is untrusted input, and secrets are shallow.
const maxDepth = 64

// maxValues bounds the values of a loaded document, aliases expanded: a few aliases can stand for billions.
const maxValues = 1 << 18

var (
	errTooDeep = fmt.Errorf("the document nests deeper than %d levels", maxDepth)
	errTooMany = fmt.Errorf("the document has more than %d values (aliases expanded)", maxValues)
)

// yamlLoader converts YAML nodes to a document's values within the bounds.
type yamlLoader struct{ left int }

func (l *yamlLoader) spend(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	if l.left--; l.left < 0 {
		return errTooMany
	}
	return nil
}

func (l *yamlLoader) branch(n *yaml.Node, b omap, depth int) (omap, error) {
	if err := l.spend(depth); err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			var err error
			if b, err = l.branch(c, b, depth); err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		return nil, errors.New("YAML documents that are sequences are not supported")
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var k any
			if err := n.Content[i].Decode(&k); err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("line %d: a key is not a string (sops supports string keys only)", n.Content[i].Line)
			}
			v, err := l.value(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			b = append(b, item{ks, v})
		}
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return b, nil
		}
		return nil, errors.New("YAML documents that are values are not supported")
	case yaml.AliasNode:
		return l.branch(n.Alias, b, depth+1)
	}
	return b, nil
}

func (l *yamlLoader) value(n *yaml.Node, depth int) (any, error) {
	if err := l.spend(depth); err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.SequenceNode:
		var out []any
		for _, c := range n.Content {
			v, err := l.value(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return l.branch(n, omap{}, depth)
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	case yaml.AliasNode:
		return l.value(n.Alias, depth+1)
	}
	return nil, nil
}

// loadJSON loads a JSON object as sops's JSON store does: keys in order, integers as int, other numbers float64.
func loadJSON(in []byte) (omap, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, errors.New("the document is not a JSON object")
	}
	b, err := jsonObject(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return b, nil
}

func jsonObject(dec *json.Decoder, depth int) (omap, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	b := omap{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := t.(string)
		if !ok {
			return nil, errors.New("an object key is not a string")
		}
		v, err := jsonValue(dec, depth+1)
		if err != nil {
			return nil, err
		}
		b = append(b, item{k, v})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	return b, nil
}

func jsonValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			return jsonObject(dec, depth)
		case '[':
			out := []any{}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return out, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return int(i), nil
		}
		return t.Float64()
	default:
		return t, nil
	}
}

// dataKey opens the file's data key with one of d's identities, from the age stanzas of its key group.
func (d *Decrypter) dataKey(m metadata) ([]byte, error) {
	group := m.keyGroup
	switch n := len(m.KeyGroups); {
	case len(group.Age) > 0 || len(group.others()) > 0:
	case n == 1:
		group = m.KeyGroups[0]
	case n > 1:
		return nil, fmt.Errorf("%w: %d key groups (Shamir threshold %d); berth supports one group of age recipients", ErrUnsupported, n, m.ShamirThreshold)
	default:
		return nil, fmt.Errorf("%w: its sops metadata lists no keys", ErrNotSOPS)
	}
	if len(group.Age) == 0 {
		return nil, fmt.Errorf("%w: the file is encrypted only for %s; berth decrypts with age (add an age recipient: sops updatekeys)", ErrNoIdentity, strings.Join(group.others(), ", "))
	}
	var recipients []string
	for _, k := range group.Age {
		recipients = append(recipients, k.Recipient)
		r, err := age.Decrypt(armor.NewReader(strings.NewReader(k.Enc)), d.ids...)
		if err != nil {
			var nm *age.NoIdentityMatchError
			if errors.As(err, &nm) {
				continue
			}
			return nil, fmt.Errorf("%w: the age stanza for %s is malformed", ErrIntegrity, k.Recipient)
		}
		key, err := io.ReadAll(io.LimitReader(r, 64))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%w: the data key sealed for %s is malformed", ErrIntegrity, k.Recipient)
		}
		return key, nil
	}
	return nil, fmt.Errorf("%w: it is encrypted for %s; this controller holds %s", ErrNoIdentity,
		strings.Join(recipients, ", "), strings.Join(d.recipients, ", "))
}

// shouldBeEncrypted is sops's Tree.shouldBeEncrypted without the comment rules.
func (doc *document) shouldBeEncrypted(keys []string) bool {
	m := doc.meta
	enc := true
	if s := m.UnencryptedSuffix; s != "" && slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, s) }) {
		enc = false
	}
	if s := m.EncryptedSuffix; s != "" {
		enc = slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, s) })
	}
	if doc.unencrypted != nil && slices.ContainsFunc(keys, doc.unencrypted.MatchString) {
		enc = false
	}
	if doc.encrypted != nil {
		enc = slices.ContainsFunc(keys, doc.encrypted.MatchString)
	}
	return enc
}

// decrypt decrypts every value in place, in sops's walk order, and checks the file's MAC.
func (doc *document) decrypt(key []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	h := sha512.New()
	if doc.meta.MACOnlyEncrypted {
		h.Write(macOnlyEncryptedInit)
	}
	var walk func(v any, keys []string) (any, error)
	walk = func(v any, keys []string) (any, error) {
		switch x := v.(type) {
		case omap:
			for i := range x {
				nv, err := walk(x[i].val, append(keys, x[i].key))
				if err != nil {
					return nil, err
				}
				x[i].val = nv
			}
			return x, nil
		case []any:
			out := x[:0]
			for _, e := range x {
				nv, err := walk(e, keys)
				if err != nil {
					return nil, err
				}
				if _, c := nv.(comment); !c {
					out = append(out, nv)
				}
			}
			return out, nil
		case nil:
			return nil, nil
		}
		enc := doc.shouldBeEncrypted(keys)
		out := v
		if enc {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%w: the value at %s is not encrypted", ErrIntegrity, strings.Join(keys, "."))
			}
			if out, err = decryptValue(block, s, strings.Join(keys, ":")+":"); err != nil {
				return nil, fmt.Errorf("%w: the value at %s: %v", ErrIntegrity, strings.Join(keys, "."), err)
			}
		}
		if _, c := out.(comment); c || (doc.meta.MACOnlyEncrypted && !enc) {
			return out, nil
		}
		b, err := toBytes(out)
		if err != nil {
			return nil, fmt.Errorf("%w: the value at %s: %v", ErrNotSOPS, strings.Join(keys, "."), err)
		}
		h.Write(b)
		return out, nil
	}
	for i, b := range doc.branches {
		nb, err := walk(b, nil)
		if err != nil {
			return err
		}
		doc.branches[i] = nb.(omap)
	}
	// The MAC itself is sealed with the data key, lastmodified (as RFC 3339) being its additional data.
	lm, err := time.Parse(time.RFC3339, doc.meta.LastModified)
	if err != nil {
		return fmt.Errorf("%w: its lastmodified is not an RFC 3339 time", ErrNotSOPS)
	}
	want, err := decryptValue(block, doc.meta.MAC, lm.Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("%w: the MAC cannot be opened (the file was edited without sops, or its metadata corrupted)", ErrIntegrity)
	}
	ws, _ := want.(string)
	if ws == "" {
		return fmt.Errorf("%w: the file has no MAC", ErrIntegrity)
	}
	if got := fmt.Sprintf("%X", h.Sum(nil)); got != ws {
		return fmt.Errorf("%w: MAC mismatch: the file was edited without sops or is corrupted (decrypt and re-encrypt it with sops)", ErrIntegrity)
	}
	return nil
}

// encRE is the form of an encrypted value (aes/cipher.go).
var encRE = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// decryptValue opens one value with AES-256-GCM; ad is its path ("db:password:"). Errors never quote it.
func decryptValue(block cipher.Block, s, ad string) (any, error) {
	if s == "" {
		return "", nil
	}
	m := encRE.FindStringSubmatch(s)
	if m == nil {
		return nil, errors.New("not in sops's encrypted form ENC[AES256_GCM,…]")
	}
	var parts [3][]byte
	for i := range parts {
		b, err := base64.StdEncoding.DecodeString(m[i+1])
		if err != nil {
			return nil, errors.New("malformed base64")
		}
		parts[i] = b
	}
	data, iv, tag := parts[0], parts[1], parts[2]
	if len(iv) == 0 || len(tag) != 16 {
		return nil, errors.New("malformed iv or tag")
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return nil, errors.New("malformed iv")
	}
	pt, err := gcm.Open(nil, iv, append(data, tag...), []byte(ad))
	if err != nil {
		return nil, errors.New("authentication failed")
	}
	t := string(pt)
	switch m[4] {
	case "str":
		return t, nil
	case "bytes":
		return pt, nil
	case "int":
		i, err := strconv.Atoi(t)
		if err != nil {
			return nil, errors.New("not an int")
		}
		return i, nil
	case "float":
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, errors.New("not a float")
		}
		return f, nil
	case "bool":
		b, err := strconv.ParseBool(t)
		if err != nil {
			return nil, errors.New("not a bool")
		}
		return b, nil
	case "time":
		var tm time.Time
		if err := tm.UnmarshalText(pt); err != nil {
			return nil, errors.New("not a time")
		}
		return tm, nil
	case "comment":
		return comment{}, nil
	}
	return nil, fmt.Errorf("unknown type %q", m[4])
}

// toBytes is sops.ToBytes: what the MAC hashes for a value.
func toBytes(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case int:
		return []byte(strconv.Itoa(v)), nil
	case float64:
		return []byte(strconv.FormatFloat(v, 'f', -1, 64)), nil
	case bool:
		if v {
			return []byte("True"), nil
		}
		return []byte("False"), nil
	case []byte:
		return v, nil
	case time.Time:
		return v.MarshalText()
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

// value is the clear value at a dotted key path, or the whole document for "".
func (doc *document) value(key string) ([]byte, error) {
	if key == "" {
		return doc.whole()
	}
	var cur any
	if len(doc.branches) > 0 {
		cur = doc.branches[0]
	}
	if len(doc.branches) > 1 {
		return nil, fmt.Errorf("%w: the file has %d YAML documents; a key selects from a single-document file", ErrUnsupported, len(doc.branches))
	}
	segs := strings.Split(key, ".")
	for i, seg := range segs {
		at := strings.Join(segs[:i], ".")
		if at == "" {
			at = "the top level"
		}
		switch x := cur.(type) {
		case omap:
			j := slices.IndexFunc(x, func(it item) bool { return it.key == seg })
			if j < 0 {
				keys := make([]string, len(x))
				for k, it := range x {
					keys[k] = it.key
				}
				return nil, fmt.Errorf("%w: %s has no key %q (keys there: %s)", ErrKeyNotFound, at, seg, strings.Join(keys, ", "))
			}
			cur = x[j].val
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(x) {
				return nil, fmt.Errorf("%w: %s is a list of %d; %q is not an index in it", ErrKeyNotFound, at, len(x), seg)
			}
			cur = x[n]
		default:
			return nil, fmt.Errorf("%w: %s is a single value; it has no key %q", ErrKeyNotFound, at, seg)
		}
	}
	switch x := cur.(type) {
	case omap, []any:
		return nil, fmt.Errorf("%w: %s is a %s, not a single value (name a value inside it, or leave key out for the whole file)", ErrKeyNotFound, key, kindOf(x))
	case nil:
		return nil, fmt.Errorf("%w: %s is null", ErrKeyNotFound, key)
	}
	return text(cur), nil
}

func kindOf(v any) string {
	if _, ok := v.(omap); ok {
		return "map"
	}
	return "list"
}

// text is how a scalar is delivered to a workload.
func text(v any) []byte {
	switch v := v.(type) {
	case string:
		return []byte(v)
	case []byte:
		return slices.Clone(v)
	case bool:
		return []byte(strconv.FormatBool(v))
	case time.Time:
		b, _ := v.MarshalText()
		return b
	}
	b, _ := toBytes(v)
	return b
}

// whole is the decrypted file without its sops metadata: the original bytes of a binary file, else the document
// in its own format as `sops -d` prints it (YAML indented by 4, documents separated by "---"; JSON indented by
// tabs), except that comments are left out.
func (doc *document) whole() ([]byte, error) {
	switch doc.format {
	case formatBinary:
		if len(doc.branches) == 1 && len(doc.branches[0]) == 1 && doc.branches[0][0].key == "data" {
			if s, ok := doc.branches[0][0].val.(string); ok {
				return []byte(s), nil
			}
		}
		fallthrough
	case formatJSON:
		var buf bytes.Buffer
		writeJSON(&buf, doc.branches[0], "")
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4) // as sops -d writes it
	for _, b := range doc.branches {
		if err := enc.Encode(yamlNode(b)); err != nil {
			return nil, fmt.Errorf("%w: the decrypted document cannot be written as YAML", ErrNotSOPS)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("%w: the decrypted document cannot be written as YAML", ErrNotSOPS)
	}
	return buf.Bytes(), nil
}

func yamlNode(v any) *yaml.Node {
	switch x := v.(type) {
	case omap:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, it := range x {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: it.key}, yamlNode(it.val))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range x {
			n.Content = append(n.Content, yamlNode(e))
		}
		return n
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", string(text(v))
	}
	return n
}

func writeJSON(buf *bytes.Buffer, v any, indent string) {
	in := indent + "\t"
	switch x := v.(type) {
	case omap:
		if len(x) == 0 {
			buf.WriteString("{}")
			return
		}
		buf.WriteString("{\n")
		for i, it := range x {
			k, _ := json.Marshal(it.key)
			buf.WriteString(in)
			buf.Write(k)
			buf.WriteString(": ")
			writeJSON(buf, it.val, in)
			if i < len(x)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "}")
	case []any:
		if len(x) == 0 {
			buf.WriteString("[]")
			return
		}
		buf.WriteString("[\n")
		for i, e := range x {
			buf.WriteString(in)
			writeJSON(buf, e, in)
			if i < len(x)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "]")
	case []byte:
		b, _ := json.Marshal(string(x))
		buf.Write(b)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			b, _ = json.Marshal(string(text(x)))
		}
		buf.Write(b)
	}
}

// registerLeaves registers every scalar of the decrypted document: a whole-file secret may be quoted in parts.
func (doc *document) registerLeaves() {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case omap:
			for _, it := range x {
				walk(it.val)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case nil:
		default:
			register(text(x))
		}
	}
	for _, b := range doc.branches {
		walk(b)
	}
}
