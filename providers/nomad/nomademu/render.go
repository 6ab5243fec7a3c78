package nomademu

import (
	"fmt"
	"maps"
	"strings"
	"text/template"

	"github.com/hashicorp/nomad/api"
)

// rendered is what a placed allocation's task was given by its templates: its environment (the task's env with
// the env templates' variables over it) and the files rendered in its task directory, by destination.
type rendered struct {
	env   map[string]string
	files map[string]string
	err   string // why rendering failed ("" when it did not)
}

// SetVaultSecret sets a Vault KV v2 secret's data, as the templates' `secret` function reads it
// (.Data.data.<key>). The emulator has no Vault API: this is the only way in.
func (s *Server) SetVaultSecret(path string, data map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vault == nil {
		s.vault = map[string]map[string]string{}
	}
	s.vault[path] = maps.Clone(data)
}

// AllocEnv returns the environment an allocation's task started with: the task's env and the variables of its
// env templates, rendered when the allocation was placed. False for an unknown allocation or one whose templates
// failed.
func (s *Server) AllocEnv(id string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.allocs {
		if a.stub.ID == id && a.out.err == "" {
			return maps.Clone(a.out.env), true
		}
	}
	return nil, false
}

// AllocFile returns the content of a file an allocation's templates rendered, by destination relative to the
// task directory ("secrets/db").
func (s *Server) AllocFile(id, dest string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.allocs {
		if a.stub.ID == id {
			v, ok := a.out.files[strings.TrimPrefix(dest, "/")]
			return v, ok
		}
	}
	return "", false
}

// render runs the templates of the job's first task as the Nomad client does when it starts the task (s.mu held):
// nomadVar reads a variable of the job's namespace (a missing or denied one fails the task, where Nomad would
// block it until the healthy deadline fails the deployment), secret reads SetVaultSecret's data.
func (s *Server) render(sp *api.Job) rendered {
	out := rendered{env: map[string]string{}, files: map[string]string{}}
	if len(sp.TaskGroups) == 0 || len(sp.TaskGroups[0].Tasks) == 0 {
		return out
	}
	t := sp.TaskGroups[0].Tasks[0]
	maps.Copy(out.env, t.Env)
	namespace := ns(deref(sp.Namespace))
	funcs := template.FuncMap{
		"nomadVar": func(path string) (map[string]string, error) {
			key := namespace + "\x00" + path
			st := s.varState()
			if st.denied[key] {
				return nil, fmt.Errorf("nomadVar %q: Permission denied", path)
			}
			v := st.vars[key]
			if v == nil {
				return nil, fmt.Errorf("nomadVar %q: variable not found", path)
			}
			return maps.Clone(map[string]string(v.Items)), nil
		},
		"secret": func(path string) (map[string]any, error) {
			data, ok := s.vault[path]
			if !ok {
				return nil, fmt.Errorf("secret %q: no secret at the path", path)
			}
			return map[string]any{"Data": map[string]any{"data": maps.Clone(data)}}, nil
		},
	}
	for i, tp := range t.Templates {
		tm, err := template.New(fmt.Sprint(i)).Delims(deref(tp.LeftDelim), deref(tp.RightDelim)).Funcs(funcs).
			Parse(deref(tp.EmbeddedTmpl))
		var b strings.Builder
		if err == nil {
			err = tm.Execute(&b, nil)
		}
		if err != nil {
			out.err = fmt.Sprintf("Template failed: %v", err)
			return out
		}
		dest := strings.TrimPrefix(deref(tp.DestPath), "/")
		out.files[dest] = b.String()
		if !deref(tp.Envvars) {
			continue
		}
		for _, line := range strings.Split(b.String(), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, "="); ok {
				out.env[strings.TrimSpace(k)] = v
			}
		}
	}
	return out
}
