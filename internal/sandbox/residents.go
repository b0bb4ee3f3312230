package sandbox

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file holds the residents the sandbox knows and how they are read:
// get by id, list with filters and paging, integrations and properties.

// store writes a resident and returns its id. Callers hold mu.
func (s *Server) store(body resident, at time.Time) string {
	id := "res_" + randomHex(10)
	x := strconv.Itoa(100000 + len(s.order))
	ts := at.UTC().Format(time.RFC3339)
	rec := body
	vendor := s.cfg.Integrations[str(body.IntegrationID)]
	rec.ID, rec.XID, rec.CreatedAt, rec.UpdatedAt, rec.IntegrationVendor = &id, &x, &ts, &ts, &vendor
	s.residents[id] = &rec
	s.order = append(s.order, id)
	s.stats.ResidentsCreated++
	s.stats.ResidentsByIdentity[identity(body)]++
	return id
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.residents[r.PathValue("id")]
	var out resident
	if ok {
		out = *rec
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Resident not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, oneAnswer{Meta: map[string]any{}, Results: out})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, limit, ok := paging(w, q.Get("offset"), q.Get("limit"))
	if !ok {
		return
	}
	integrationID, email := q.Get("integration_id"), q.Get("email_1")
	first, last := q.Get("first_name"), q.Get("last_name")
	s.mu.Lock()
	var matched []resident
	for _, id := range s.order {
		rec := s.residents[id]
		if integrationID != "" && str(rec.IntegrationID) != integrationID {
			continue
		}
		if email != "" && !strings.EqualFold(str(rec.Email1), email) {
			continue
		}
		if (first != "" && !strings.EqualFold(str(rec.FirstName), first)) || (last != "" && !strings.EqualFold(str(rec.LastName), last)) {
			continue
		}
		matched = append(matched, *rec)
	}
	s.mu.Unlock()
	total := len(matched)
	page := []resident{}
	if offset < total {
		page = matched[offset:min(total, offset+limit)]
	}
	writeJSON(w, http.StatusOK, listAnswer{
		Meta:    listMeta{Offset: offset, Limit: limit, OrderBy: "created_at", HasMore: offset+len(page) < total, Total: total},
		Results: page,
	})
}

func (s *Server) integrations(w http.ResponseWriter, r *http.Request) {
	var out []integration
	for id, vendor := range s.cfg.Integrations {
		out = append(out, integration{ID: id, Vendor: vendor, Active: true, System: "SANDBOX"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, integrationsAnswer{Meta: listMeta{Limit: 100, Total: len(out)}, Results: out})
}

func (s *Server) properties(w http.ResponseWriter, r *http.Request) {
	integrationID := r.URL.Query().Get("integration_id")
	out := []property{}
	for id, owner := range s.cfg.Properties {
		if integrationID == "" || owner == integrationID {
			out = append(out, property{ID: id, IntegrationID: owner, Name: "Sandbox property " + id})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, propertiesAnswer{Meta: listMeta{Limit: 100, Total: len(out)}, Results: out})
}

func paging(w http.ResponseWriter, offsetArg, limitArg string) (offset, limit int, ok bool) {
	offset, limit = 0, 100
	var err error
	if offsetArg != "" {
		if offset, err = strconv.Atoi(offsetArg); err != nil || offset < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "offset must be a whole number >= 0", nil)
			return 0, 0, false
		}
	}
	if limitArg != "" {
		if limit, err = strconv.Atoi(limitArg); err != nil || limit < 1 || limit > 250 {
			writeError(w, http.StatusBadRequest, "invalid_request", "limit must be 1 to 250", nil)
			return 0, 0, false
		}
	}
	return offset, limit, true
}
