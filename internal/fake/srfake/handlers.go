package srfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Registry error codes (io.confluent.kafka.schemaregistry.rest.exceptions.Errors).
const (
	codeSubjectNotFound    = 40401
	codeVersionNotFound    = 40402
	codeSchemaNotFound     = 40403
	codeSubjectSoftDeleted = 40404
	codeSubjectNotDeleted  = 40405
	codeInvalidSchema      = 42201
	codeInvalidVersion     = 42202
)

type apiError struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// subjectVersion is the answer of GET /subjects/{s}/versions/{v} and of a
// lookup. schemaType is omitted, as the registry does for AVRO.
type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // Jackson does not escape <, > and &
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, format string, args ...any) {
	writeJSON(w, status, apiError{ErrorCode: code, Message: fmt.Sprintf(format, args...)})
}

// serve applies delay, injected failures and authentication, then routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	delay := s.delay
	fail := 0
	if s.failN > 0 {
		s.failN--
		fail = s.failStatus
	}
	user, pass, auth := s.user, s.pass, s.auth
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
	if fail != 0 {
		msg := http.StatusText(fail)
		if fail == http.StatusInternalServerError {
			msg = "Error in the backend data store"
		}
		writeError(w, fail, fail*100+1, "%s", msg)
		return
	}
	if auth {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="SchemaRegistry"`)
			writeError(w, http.StatusUnauthorized, 401, "Unauthorized")
			return
		}
	}
	s.route(w, r)
}

// route dispatches on the escaped path so that subjects may hold dots,
// slashes or other escaped characters.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			writeError(w, http.StatusNotFound, 404, "HTTP 404 Not Found")
			return
		}
		parts[i] = u
	}
	notAllowed := func() {
		writeError(w, http.StatusMethodNotAllowed, 405, "HTTP 405 Method Not Allowed")
	}
	method := func(m string, h func()) {
		if r.Method != m {
			notAllowed()
			return
		}
		h()
	}
	switch {
	case len(parts) == 1 && parts[0] == "subjects":
		method(http.MethodGet, func() { s.listSubjects(w) })
	case len(parts) == 2 && parts[0] == "subjects":
		switch r.Method {
		case http.MethodPost:
			s.lookup(w, r, parts[1])
		case http.MethodDelete:
			s.deleteSubject(w, parts[1], r.URL.Query().Get("permanent") == "true")
		default:
			notAllowed()
		}
	case len(parts) == 3 && parts[0] == "subjects" && parts[2] == "versions":
		switch r.Method {
		case http.MethodGet:
			s.listVersions(w, parts[1])
		case http.MethodPost:
			s.registerHTTP(w, r, parts[1])
		default:
			notAllowed()
		}
	case len(parts) == 4 && parts[0] == "subjects" && parts[2] == "versions":
		method(http.MethodGet, func() { s.getVersion(w, parts[1], parts[3]) })
	case len(parts) >= 3 && len(parts) <= 4 && parts[0] == "schemas" && parts[1] == "ids":
		id, err := strconv.Atoi(parts[2])
		if err != nil || (len(parts) == 4 && parts[3] != "versions") {
			writeError(w, http.StatusNotFound, 404, "HTTP 404 Not Found")
			return
		}
		method(http.MethodGet, func() { s.getByID(w, id, len(parts) == 4) })
	default:
		writeError(w, http.StatusNotFound, 404, "HTTP 404 Not Found")
	}
}

func (s *Server) listSubjects(w http.ResponseWriter) {
	s.mu.Lock()
	names := []string{}
	for name := range s.subjects {
		if len(s.live(name)) > 0 {
			names = append(names, name)
		}
	}
	s.mu.Unlock()
	sort.Strings(names)
	writeJSON(w, http.StatusOK, names)
}

func (s *Server) listVersions(w http.ResponseWriter, name string) {
	s.mu.Lock()
	live := s.live(name)
	s.mu.Unlock()
	if len(live) == 0 {
		writeError(w, http.StatusNotFound, codeSubjectNotFound, "Subject '%s' not found.", name)
		return
	}
	out := make([]int, len(live))
	for i, v := range live {
		out[i] = v.version
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getVersion(w http.ResponseWriter, name, ver string) {
	n, err := strconv.Atoi(ver)
	switch {
	case ver == "latest":
		n = -1
	case err != nil || n == 0 || n < -1:
		writeError(w, http.StatusUnprocessableEntity, codeInvalidVersion,
			"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", ver)
		return
	}
	s.mu.Lock()
	live := s.live(name)
	var found *version
	for _, v := range live {
		if v.version == n || (n == -1 && v == live[len(live)-1]) {
			found = v
		}
	}
	var text string
	if found != nil {
		text = s.schemas[found.id-1]
	}
	s.mu.Unlock()
	switch {
	case len(live) == 0:
		writeError(w, http.StatusNotFound, codeSubjectNotFound, "Subject '%s' not found.", name)
	case found == nil:
		writeError(w, http.StatusNotFound, codeVersionNotFound, "Version %s not found.", ver)
	default:
		writeJSON(w, http.StatusOK, subjectVersion{Subject: name, Version: found.version, ID: found.id, Schema: text})
	}
}

func (s *Server) getByID(w http.ResponseWriter, id int, versions bool) {
	text, ok := s.SchemaByID(id)
	if !ok {
		writeError(w, http.StatusNotFound, codeSchemaNotFound, "Schema %d not found", id)
		return
	}
	if !versions {
		writeJSON(w, http.StatusOK, map[string]string{"schema": text})
		return
	}
	type pair struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
	}
	out := []pair{}
	s.mu.Lock()
	for name := range s.subjects {
		for _, v := range s.live(name) {
			if v.id == id {
				out = append(out, pair{name, v.version})
			}
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].Subject < out[j].Subject || (out[i].Subject == out[j].Subject && out[i].Version < out[j].Version)
	})
	writeJSON(w, http.StatusOK, out)
}

// readSchema decodes a {"schema":"...","schemaType":"..."} body and
// answers the error itself when it cannot.
func readSchema(w http.ResponseWriter, r *http.Request) (string, bool) {
	var body struct {
		Schema     string `json:"schema"`
		SchemaType string `json:"schemaType"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 400, "Unrecognized request body: %v", err)
		return "", false
	}
	if body.SchemaType != "" && body.SchemaType != "AVRO" {
		writeError(w, http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid schema type %s (this fake supports AVRO only)", body.SchemaType)
		return "", false
	}
	if body.Schema == "" {
		writeError(w, http.StatusUnprocessableEntity, codeInvalidSchema, "Empty schema")
		return "", false
	}
	return body.Schema, true
}

func (s *Server) registerHTTP(w http.ResponseWriter, r *http.Request, name string) {
	schema, ok := readSchema(w, r)
	if !ok {
		return
	}
	id, _, err := s.register(name, schema)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid schema %s, details: %v", schema, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"id": id})
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request, name string) {
	schema, ok := readSchema(w, r)
	if !ok {
		return
	}
	_, identity, err := canonical(schema)
	s.mu.Lock()
	live := s.live(name)
	var found *version
	if err == nil {
		id, known := s.ids[identity]
		for _, v := range live {
			if known && v.id == id {
				found = v
			}
		}
	}
	s.mu.Unlock()
	switch {
	case len(live) == 0:
		writeError(w, http.StatusNotFound, codeSubjectNotFound, "Subject '%s' not found.", name)
	case errors.Is(err, errInvalidSchema):
		writeError(w, http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid schema %s, details: %v", schema, err)
	case found == nil:
		writeError(w, http.StatusNotFound, codeSchemaNotFound, "Schema not found")
	default:
		writeJSON(w, http.StatusOK, subjectVersion{Subject: name, Version: found.version, ID: found.id, Schema: s.text(found.id)})
	}
}

// text returns the schema text registered with id.
func (s *Server) text(id int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.schemas[id-1]
}

// deleteSubject soft-deletes the subject's versions, or with permanent
// removes a subject that was soft-deleted first; it answers the versions.
func (s *Server) deleteSubject(w http.ResponseWriter, name string, permanent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subjects[name]
	if sub == nil || len(sub.versions) == 0 {
		writeError(w, http.StatusNotFound, codeSubjectNotFound, "Subject '%s' not found.", name)
		return
	}
	live := s.live(name)
	out := []int{}
	switch {
	case permanent && len(live) > 0:
		writeError(w, http.StatusNotFound, codeSubjectNotDeleted, "Subject '%s' was not deleted first before being permanently deleted", name)
		return
	case permanent:
		for _, v := range sub.versions {
			out = append(out, v.version)
		}
		delete(s.subjects, name)
	case len(live) == 0:
		writeError(w, http.StatusNotFound, codeSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", name)
		return
	default:
		for _, v := range live {
			v.deleted = true
			out = append(out, v.version)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
