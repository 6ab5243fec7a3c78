package nomademu

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// MaxVariableSize is Nomad's limit on a variable's items (the sum of the keys' and values' lengths).
const MaxVariableSize = 64 * 1024

// Timeout is a fault kind for Fail: the request is not answered until the client gives up (its context ends).
const Timeout = "timeout"

// validVariablePath is the server's own rule for variable paths.
var validVariablePath = regexp.MustCompile("^[a-zA-Z0-9-_~/]{1,128}$")

var varEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// varStore holds the Nomad variables (s.mu guards it).
type varStore struct {
	vars   map[string]*api.Variable // namespace \x00 path
	denied map[string]bool          // namespace \x00 path
}

func (s *Server) varState() *varStore {
	if s.vars == nil {
		s.vars = &varStore{vars: map[string]*api.Variable{}, denied: map[string]bool{}}
	}
	return s.vars
}

// varReply is an answer of the variables endpoints, which choose their own status and X-Nomad-Index.
type varReply struct {
	code  int
	index uint64
	body  any // nil: no body
}

// writeVar writes a varReply with the headers every answer carries.
func (s *Server) writeVar(w http.ResponseWriter, r *varReply) {
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(r.index, 10))
	w.Header().Set("X-Nomad-KnownLeader", "true")
	w.Header().Set("X-Nomad-LastContact", "0")
	if r.body == nil {
		w.WriteHeader(r.code)
		return
	}
	b, _ := json.Marshal(r.body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.code)
	w.Write(b)
}

// DenyVariable makes every request on a variable answer 403 "Permission denied", as a token whose policy does
// not grant the path would.
func (s *Server) DenyVariable(namespace, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.varState().denied[ns(namespace)+"\x00"+path] = true
}

// SetVariable writes a variable out of band (as an operator's `nomad var put` would) and returns its new
// ModifyIndex.
func (s *Server) SetVariable(namespace, path string, items map[string]string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putVar(ns(namespace), path, items).ModifyIndex
}

// Variable returns a copy of a variable and whether it exists.
func (s *Server) Variable(namespace, path string) (api.Variable, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.varState().vars[ns(namespace)+"\x00"+path]
	if v == nil {
		return api.Variable{}, false
	}
	return *v.Copy(), true
}

func (s *Server) putVar(namespace, path string, items map[string]string) *api.Variable {
	st := s.varState()
	s.bump()
	now := varEpoch.Add(time.Duration(s.index) * time.Second).UnixNano() // reproducible: one second per index
	key := namespace + "\x00" + path
	v := st.vars[key]
	if v == nil {
		v = &api.Variable{Namespace: namespace, Path: path, CreateIndex: s.index, CreateTime: now}
		st.vars[key] = v
	}
	v.ModifyIndex, v.ModifyTime = s.index, now
	v.Items = maps.Clone(items)
	return v
}

// variables serves /v1/vars and /v1/var/:path (s.mu held).
func (s *Server) variables(method, path, namespace string, q url.Values, body []byte) (any, *httpError) {
	st := s.varState()
	if path == "/v1/vars" {
		if method != http.MethodGet {
			return nil, errf(http.StatusMethodNotAllowed, "Invalid method")
		}
		return s.listVars(namespace, q)
	}
	vpath := strings.TrimPrefix(path, "/v1/var/")
	if vpath == "" {
		return nil, errf(http.StatusBadRequest, "missing variable path")
	}
	if st.denied[namespace+"\x00"+vpath] {
		return nil, errf(http.StatusForbidden, "Permission denied")
	}
	key := namespace + "\x00" + vpath
	cur := st.vars[key]
	isCAS, check := false, uint64(0)
	if c := q.Get("cas"); c != "" {
		n, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			return nil, errf(http.StatusBadRequest, "can not parse cas: %v", err)
		}
		isCAS, check = true, n
	}
	conflict := func() *varReply {
		if cur == nil {
			return &varReply{code: http.StatusConflict, body: &api.Variable{Namespace: namespace, Path: vpath}}
		}
		return &varReply{code: http.StatusConflict, index: cur.ModifyIndex, body: cur.Copy()}
	}
	switch method {
	case http.MethodGet:
		if cur == nil {
			return nil, errf(http.StatusNotFound, "variable not found")
		}
		return &varReply{code: http.StatusOK, index: cur.ModifyIndex, body: cur.Copy()}, nil
	case http.MethodPut, http.MethodPost:
		var in api.Variable
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, errf(http.StatusBadRequest, "%v", err)
		}
		if len(in.Items) == 0 {
			return nil, errf(http.StatusBadRequest, "variable missing required Items object")
		}
		if in.Namespace != "" && in.Namespace != namespace {
			namespace, key = in.Namespace, in.Namespace+"\x00"+vpath
			cur = st.vars[key]
		}
		if err := validateVariable(namespace, vpath, in.Items); err != nil {
			return nil, err
		}
		if isCAS && s.varConflict > 0 { // another writer got there first
			s.varConflict--
			items := map[string]string{"written-by": "another writer"}
			if cur != nil {
				items = cur.Items
			}
			cur = s.putVar(namespace, vpath, items)
		}
		if isCAS && ((check == 0 && cur != nil) || (check != 0 && (cur == nil || cur.ModifyIndex != check))) {
			return conflict(), nil
		}
		v := s.putVar(namespace, vpath, in.Items)
		return &varReply{code: http.StatusOK, index: s.index, body: v.Copy()}, nil
	case http.MethodDelete:
		if isCAS && ((check == 0 && cur != nil) || (check != 0 && (cur == nil || cur.ModifyIndex != check))) {
			return conflict(), nil
		}
		if cur != nil {
			delete(st.vars, key)
			s.bump()
		}
		return &varReply{code: http.StatusNoContent, index: s.index}, nil
	}
	return nil, errf(http.StatusBadRequest, "Invalid method")
}

// validateVariable applies the server's VariableDecrypted.Validate; its refusals are plain RPC errors, which the
// agent answers as 500 with the text.
func validateVariable(namespace, path string, items map[string]string) *httpError {
	if namespace == "*" {
		return errf(http.StatusInternalServerError, "can not target wildcard (\"*\")namespace")
	}
	size := 0
	for k, v := range items {
		size += len(k) + len(v)
	}
	if size > MaxVariableSize {
		return errf(http.StatusInternalServerError, "variables are limited to 64KiB in total size")
	}
	if !validVariablePath.MatchString(path) {
		return errf(http.StatusInternalServerError, "invalid path %q", path)
	}
	parts := strings.Split(path, "/")
	if parts[0] != "nomad" {
		return nil
	}
	switch {
	case len(parts) == 1:
		return errf(http.StatusInternalServerError, "\"nomad\" is a reserved top-level directory path, but you may write variables to \"nomad/jobs\", \"nomad/job-templates\", or below")
	case parts[1] == "jobs":
		return nil
	case parts[1] == "job-templates" && len(parts) == 3:
		return nil
	case parts[1] == "job-templates":
		return errf(http.StatusInternalServerError, "\"nomad/job-templates\" is a reserved directory path, but you may write variables at the level below it, for example, \"nomad/job-templates/template-name\"")
	}
	return errf(http.StatusInternalServerError, "only paths at \"nomad/jobs\" or \"nomad/job-templates\" and below are valid paths under the top-level \"nomad\" directory")
}

// listVars answers GET /v1/vars: metadata only, ordered by namespace and path, with ?prefix=, ?namespace=* and
// pagination (?per_page=, ?next_token=, X-Nomad-NextToken "namespace.path").
func (s *Server) listVars(namespace string, q url.Values) (any, *httpError) {
	st := s.varState()
	prefix := q.Get("prefix")
	var out []*api.VariableMetadata
	for _, v := range st.vars {
		if (namespace == "*" || v.Namespace == namespace) && strings.HasPrefix(v.Path, prefix) && !st.denied[v.Namespace+"\x00"+v.Path] {
			out = append(out, v.Metadata())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Path < out[j].Path
	})
	token := func(m *api.VariableMetadata) string { return m.Namespace + "." + m.Path }
	if next := q.Get("next_token"); next != "" {
		i := sort.Search(len(out), func(i int) bool { return token(out[i]) >= next })
		out = out[i:]
	}
	reply := &varReply{code: http.StatusOK, index: s.index, body: out}
	if out == nil {
		reply.body = []*api.VariableMetadata{}
	}
	if pp := q.Get("per_page"); pp != "" {
		n, err := strconv.Atoi(pp)
		if err != nil || n < 0 {
			return nil, errf(http.StatusBadRequest, "failed to parse parameters")
		}
		if n > 0 && len(out) > n {
			reply.body = out[:n]
			return &pagedReply{varReply: reply, next: token(out[n])}, nil
		}
	}
	return reply, nil
}

// pagedReply is a list page with a next token.
type pagedReply struct {
	*varReply
	next string
}

// writeReply writes the answers of the variables endpoints; it reports false for any other answer.
func (s *Server) writeReply(w http.ResponseWriter, out any) bool {
	switch r := out.(type) {
	case *varReply:
		s.writeVar(w, r)
	case *pagedReply:
		w.Header().Set("X-Nomad-NextToken", r.next)
		s.writeVar(w, r.varReply)
	default:
		return false
	}
	return true
}

// hold answers a Timeout fault: nothing, until the client gives up.
func hold(r *http.Request) { <-r.Context().Done() }
