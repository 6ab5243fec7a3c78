package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/berth-dev/berth/providers/endpoint"
)

// handler is the admin API (see the package documentation).
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET "+RoutesPath, s.list)
	mux.HandleFunc("GET "+RoutesPath+"/{name}", s.get)
	mux.HandleFunc("PUT "+RoutesPath+"/{name}", s.putHandler)
	mux.HandleFunc("DELETE "+RoutesPath+"/{name}", s.deleteHandler)
	return mux
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	instance := r.URL.Query().Get("instance")
	out := List{Routes: []Route{}}
	s.mu.Lock()
	for _, rt := range sortedRoutes(s.routes) {
		if instance == "" || rt.owner.Instance == instance {
			out.Routes = append(out.Routes, s.viewLocked(rt))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	rt := s.routes[name]
	var v Route
	if rt != nil {
		v = s.viewLocked(rt)
	}
	s.mu.Unlock()
	if rt == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no route %s", name))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) putHandler(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	var req PutRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: "+err.Error())
		return
	}
	if err := checkOwner(req.Owner); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if err := checkEdgeMembers(req.Members); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadMember, err.Error())
		return
	}
	v, err := s.put(name, req.Owner, ttl, req.Members)
	if err != nil {
		s.writeChangeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteHandler(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	owner := endpoint.Owner{Instance: q.Get("instance"), Environment: q.Get("environment"), Workload: q.Get("workload")}
	if err := checkOwner(owner); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if err := s.remove(name, owner); err != nil {
		s.writeChangeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeChangeError answers a failed put or remove.
func (s *Server) writeChangeError(w http.ResponseWriter, err error) {
	var le *errListen
	switch {
	case errors.Is(err, endpoint.ErrNotOwned):
		writeError(w, http.StatusConflict, CodeNotOwned, err.Error())
	case errors.Is(err, errClosing):
		writeError(w, http.StatusServiceUnavailable, CodeClosing, err.Error())
	case errors.As(err, &le) && errors.Is(err, syscall.EADDRINUSE):
		writeError(w, http.StatusConflict, CodeAddressInUse, err.Error()+" (another process holds it; the table is unchanged)")
	case errors.As(err, &le):
		writeError(w, http.StatusServiceUnavailable, CodeListen, err.Error()+" (the table is unchanged)")
	default:
		s.log.Error("edge: the table could not be persisted", "err", err)
		writeError(w, http.StatusInternalServerError, CodeState, err.Error()+" (the table is unchanged)")
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg, Code: errCode})
}
