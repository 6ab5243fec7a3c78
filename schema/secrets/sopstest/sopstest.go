// Package sopstest writes SOPS files for tests, encrypted for age recipients the tests generate, the way the sops
// tool (github.com/getsops/sops/v3 v3.13.3) writes them: each value sealed with AES-256-GCM under a random data
// key (its path as additional data), the data key sealed for each age recipient in an armored age file, and a
// MAC (SHA-512 over the clear values in document order, sealed with lastmodified as additional data).
//
// Non-goals: being an encryption tool for users (use the sops CLI), comments (dropped), and sops's other key
// types and formats.
package sopstest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"go.yaml.in/yaml/v3"
)

// Formats Encrypt writes.
const (
	YAML   = "yaml"
	JSON   = "json"
	Binary = "binary"
)

// Options say how a file is encrypted. The zero value encrypts YAML with sops's defaults.
type Options struct {
	// Format is YAML (default), JSON or Binary (the whole input as one value, in a JSON envelope).
	Format string
	// UnencryptedSuffix leaves values under keys with this suffix in clear; default "_unencrypted".
	UnencryptedSuffix string
	// MACOnlyEncrypted hashes only encrypted values (sops's mac_only_encrypted).
	MACOnlyEncrypted bool
	// LastModified is the file's lastmodified; default now.
	LastModified time.Time
	// Version is the sops version written; default "3.13.3".
	Version string
}

// macOnlyEncryptedInit is sops.MACOnlyEncryptedInitialization.
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47,
	0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// NewIdentity generates an age identity for a test.
func NewIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// MustEncrypt is Encrypt for tests: it fails t on error.
func MustEncrypt(t testing.TB, plain []byte, o Options, recipients ...age.Recipient) []byte {
	t.Helper()
	b, err := Encrypt(plain, o, recipients...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type encrypter struct {
	o     Options
	gcm   cipher.AEAD
	hash  io.Writer
	suffx string
}

// Encrypt encrypts a plain YAML or JSON document (or any bytes, for Binary) for the recipients.
func Encrypt(plain []byte, o Options, recipients ...age.Recipient) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("sopstest: no recipient")
	}
	if o.Format == "" {
		o.Format = YAML
	}
	if o.UnencryptedSuffix == "" {
		o.UnencryptedSuffix = "_unencrypted"
	}
	if o.LastModified.IsZero() {
		o.LastModified = time.Now()
	}
	if o.Version == "" {
		o.Version = "3.13.3"
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, 32)
	if err != nil {
		return nil, err
	}
	h := sha512.New()
	if o.MACOnlyEncrypted {
		h.Write(macOnlyEncryptedInit)
	}
	e := &encrypter{o: o, gcm: gcm, hash: h}

	var docs []*yaml.Node
	if o.Format == Binary {
		docs = []*yaml.Node{{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: "data"},
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(plain)}}}}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(plain))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			if len(n.Content) != 1 || n.Content[0].Kind != yaml.MappingNode {
				return nil, errors.New("sopstest: each document must be a mapping")
			}
			docs = append(docs, n.Content[0])
		}
		if len(docs) == 0 {
			return nil, errors.New("sopstest: empty document")
		}
	}
	for _, d := range docs {
		if err := e.mapping(d, nil); err != nil {
			return nil, err
		}
	}
	lm := o.LastModified.UTC().Format(time.RFC3339)
	mac, err := e.seal([]byte(fmt.Sprintf("%X", h.Sum(nil))), "str", lm)
	if err != nil {
		return nil, err
	}
	ageList := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range recipients {
		var buf bytes.Buffer
		aw := armor.NewWriter(&buf)
		w, err := age.Encrypt(aw, r)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(key); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		if err := aw.Close(); err != nil {
			return nil, err
		}
		rs := fmt.Sprint(r)
		ageList.Content = append(ageList.Content, mapping("recipient", str(rs), "enc", str(buf.String()+"\n")))
	}
	meta := mapping("age", ageList, "lastmodified", str(lm), "mac", str(mac))
	if o.MACOnlyEncrypted {
		meta.Content = append(meta.Content, str("mac_only_encrypted"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	}
	meta.Content = append(meta.Content, str("unencrypted_suffix"), str(o.UnencryptedSuffix), str("version"), str(o.Version))
	docs[0].Content = append(docs[0].Content, str("sops"), meta)

	var out bytes.Buffer
	if o.Format == YAML {
		enc := yaml.NewEncoder(&out)
		enc.SetIndent(4)
		for _, d := range docs {
			if err := enc.Encode(d); err != nil {
				return nil, err
			}
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	if len(docs) != 1 {
		return nil, errors.New("sopstest: JSON has one document")
	}
	writeJSON(&out, docs[0], "")
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i < len(kv); i += 2 {
		n.Content = append(n.Content, str(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return n
}

func (e *encrypter) mapping(n *yaml.Node, keys []string) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if err := e.value(n.Content[i+1], append(keys, k)); err != nil {
			return err
		}
	}
	return nil
}

func (e *encrypter) value(n *yaml.Node, keys []string) error {
	switch n.Kind {
	case yaml.MappingNode:
		return e.mapping(n, keys)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := e.value(c, keys); err != nil {
				return err
			}
		}
		return nil
	case yaml.AliasNode:
		return errors.New("sopstest: aliases are not supported")
	}
	// A scalar: its sops type and the bytes the MAC hashes (sops.ToBytes).
	var typ string
	var b []byte
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!str":
		typ, b = "str", []byte(n.Value)
	case "!!int":
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			return err
		}
		typ, b = "int", []byte(strconv.Itoa(int(i)))
	case "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return err
		}
		typ, b = "float", []byte(strconv.FormatFloat(f, 'f', -1, 64))
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return err
		}
		typ, b = "bool", []byte("False")
		if v {
			b = []byte("True")
		}
	default:
		return fmt.Errorf("sopstest: unsupported tag %s", n.ShortTag())
	}
	encrypt := true
	for _, k := range keys {
		if strings.HasSuffix(k, e.o.UnencryptedSuffix) {
			encrypt = false
		}
	}
	if encrypt || !e.o.MACOnlyEncrypted {
		e.hash.Write(b)
	}
	if !encrypt || len(b) == 0 && typ == "str" {
		return nil
	}
	s, err := e.seal(b, typ, strings.Join(keys, ":")+":")
	if err != nil {
		return err
	}
	n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", s, 0
	return nil
}

func (e *encrypter) seal(plain []byte, typ, ad string) (string, error) {
	iv := make([]byte, 32)
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	out := e.gcm.Seal(nil, iv, plain, []byte(ad))
	data, tag := out[:len(out)-16], out[len(out)-16:]
	return fmt.Sprintf("ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]", base64.StdEncoding.EncodeToString(data),
		base64.StdEncoding.EncodeToString(iv), base64.StdEncoding.EncodeToString(tag), typ), nil
}

// writeJSON writes a YAML node tree as JSON, keys in order, indented with 4 spaces as sops does.
func writeJSON(buf *bytes.Buffer, n *yaml.Node, indent string) {
	in := indent + "    "
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteString("{\n")
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, _ := json.Marshal(n.Content[i].Value)
			buf.WriteString(in)
			buf.Write(k)
			buf.WriteString(": ")
			writeJSON(buf, n.Content[i+1], in)
			if i+2 < len(n.Content) {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "}")
	case yaml.SequenceNode:
		buf.WriteString("[\n")
		for i, c := range n.Content {
			buf.WriteString(in)
			writeJSON(buf, c, in)
			if i < len(n.Content)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "]")
	default:
		switch n.ShortTag() {
		case "!!str":
			b, _ := json.Marshal(n.Value)
			buf.Write(b)
		case "!!null":
			buf.WriteString("null")
		default:
			buf.WriteString(n.Value)
		}
	}
}
