package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// This file holds the residents the sandbox knows and how they are read:
// get by id, list with filters and paging, integrations and properties.

// store writes a resident and returns its id. Callers hold mu.
func (s *Server) store(jobID string, body resident, at time.Time) string {
	id := "res_" + randomHex(10)
	x := strconv.Itoa(100000 + len(s.order))
	ts := at.UTC().Format(time.RFC3339)
	rec := body
	vendor := vendorEnum(s.cfg.Integrations[str(body.IntegrationID)])
	rec.ID, rec.XID, rec.CreatedAt, rec.UpdatedAt, rec.IntegrationVendor = &id, &x, &ts, &ts, &vendor
	s.residents[id] = &rec
	s.order = append(s.order, id)
	s.stats.ResidentsCreated++
	s.stats.ResidentsByIdentity[identity(body)]++
	if s.remember(id, jobID, nil, at) {
		s.hooks.dataNew(jobID, id, rec)
	}
	return id
}

// lag is what the API's cache shows of a resident until a moment (or until
// the integration's next sync): the copy before its last write, or nothing
// (a new resident, whose DATA_NEW goes out when the cache reads it).
type lag struct {
	until     time.Time
	untilSync bool
	shown     *resident
	jobID     string // the write that created it; "" for an update
}

// remember starts the cache lag of a resident just written by job jobID,
// whose copy before the write was before (nil: it is new). It reports
// whether the resident shows at once. Callers hold mu.
func (s *Server) remember(id, jobID string, before *resident, at time.Time) bool {
	d := s.cfg.CacheLag.For(s.cfg.Integrations[str(s.residents[id].IntegrationID)])
	if d == 0 {
		return true
	}
	if old, lagging := s.lagging[id]; lagging {
		before = old.shown // the cache has not read the earlier write either
		if before == nil {
			jobID = old.jobID
		}
	}
	s.lagging[id] = lag{until: at.Add(d), untilSync: d == importer.UntilSync, shown: before, jobID: jobID}
	return false
}

// view is the resident as get and list show it now: nil while the cache
// has not read it yet. Callers hold mu.
func (s *Server) view(id string, now time.Time) *resident {
	if l, lagging := s.lagging[id]; lagging {
		if l.untilSync || now.Before(l.until) {
			return l.shown
		}
		if !s.hooks.listening("DATA_NEW") {
			delete(s.lagging, id) // over; else the sweep of resolveDue ends it, sending its DATA_NEW
		}
	}
	return s.residents[id]
}

// readBack ends the lags that have run out, or every lag of an integration
// when sync names one (a manual sync), and sends the DATA_NEW of each new
// resident the cache now shows. Callers hold mu.
func (s *Server) readBack(now time.Time, sync string) {
	for id, l := range s.lagging {
		rec := s.residents[id]
		if sync != "" && str(rec.IntegrationID) != sync || sync == "" && (l.untilSync || now.Before(l.until)) {
			continue
		}
		delete(s.lagging, id)
		if l.shown == nil {
			s.hooks.dataNew(l.jobID, id, *rec)
		}
	}
}

func (s *Server) manualSync(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	_, known := s.cfg.Integrations[id]
	if known {
		s.readBack(s.cfg.Now(), id)
		s.stats.ManualSyncs++
	}
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "not_found", "Integration not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "job_id": "sync_" + randomHex(8)})
}

// apply writes an update's fields to a resident, counting an update that
// changes nothing. Callers hold mu.
func (s *Server) apply(id string, body resident, clear []string, at time.Time) {
	rec, ok := s.residents[id]
	if !ok {
		return
	}
	before := *rec
	// The record and the update by field name: the update's fields that
	// are not null overwrite the record's, those sent as null clear them.
	fields, sent := asFields(*rec), asFields(body)
	changed := false
	for k, v := range sent {
		if v != nil && writable[k] && !reflect.DeepEqual(fields[k], v) {
			fields[k], changed = v, true
		}
	}
	for _, k := range clear {
		if fields[k] != nil {
			fields[k], changed = nil, true
		}
	}
	if changed {
		b, _ := json.Marshal(fields)
		var updated resident
		if json.Unmarshal(b, &updated) == nil {
			*rec = updated
		}
	}
	s.stats.UpdatesApplied++
	if !changed {
		s.stats.NoopUpdates++
		return
	}
	ts := at.UTC().Format(time.RFC3339)
	rec.UpdatedAt = &ts
	s.remember(id, "", &before, at)
}

// asFields is a resident by field name, as its JSON has it.
func asFields(r resident) map[string]any {
	b, _ := json.Marshal(r)
	fields := map[string]any{}
	_ = json.Unmarshal(b, &fields)
	return fields
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.residents[r.PathValue("id")], false
	if !strings.HasPrefix(r.URL.Path, "/_sandbox/") && rec != nil {
		rec = s.view(r.PathValue("id"), s.cfg.Now())
	}
	var out resident
	if rec != nil {
		out, ok = *rec, true
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Resident not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, oneAnswer{Meta: newListMeta(s.cfg.Variants, 0, 100, 1, 1), Results: out})
}

// listFilters are the documented filters of GET /v1/residents/; any other
// query parameter (a name, say) is ignored, as the API is assumed to.
type listFilters struct {
	integrationID, propertyID, leaseID, xID, email, phone, vendor string
	updatedGTE, updatedLTE                                        time.Time
}

func (f listFilters) match(rec *resident) bool {
	updated, _ := time.Parse(time.RFC3339, str(rec.UpdatedAt))
	return (f.integrationID == "" || str(rec.IntegrationID) == f.integrationID) &&
		(f.propertyID == "" || str(rec.PropertyID) == f.propertyID) &&
		(f.leaseID == "" || str(rec.LeaseID) == f.leaseID) &&
		(f.xID == "" || str(rec.XID) == f.xID) &&
		(f.email == "" || strings.EqualFold(str(rec.Email1), f.email)) &&
		(f.phone == "" || digits(str(rec.Phone1)) == digits(f.phone)) &&
		(f.vendor == "" || strings.EqualFold(str(rec.IntegrationVendor), f.vendor)) &&
		(f.updatedGTE.IsZero() || !updated.Before(f.updatedGTE)) &&
		(f.updatedLTE.IsZero() || !updated.After(f.updatedLTE))
}

func digits(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, limit, ok := paging(w, q.Get("offset"), q.Get("limit"))
	if !ok {
		return
	}
	f := listFilters{integrationID: q.Get("integration_id"), propertyID: q.Get("property_id"), leaseID: q.Get("lease_id"),
		xID: q.Get("x_id"), email: q.Get("email_1"), phone: q.Get("phone_1"), vendor: q.Get("integration_vendor")}
	for name, dst := range map[string]*time.Time{"updated_at_gte": &f.updatedGTE, "updated_at_lte": &f.updatedLTE} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalid_request", name+" must be an ISO-8601 date-time", nil)
				return
			}
			*dst = t
		}
	}
	orderBy := q.Get("order-by")
	if orderBy == "" {
		orderBy = "created_at:desc"
	}
	field, dir, _ := strings.Cut(orderBy, ":")
	if (field != "created_at" && field != "updated_at") || (dir != "asc" && dir != "desc") {
		writeError(w, http.StatusBadRequest, "invalid_request", "order-by must be created_at or updated_at, then :asc or :desc", nil)
		return
	}
	s.mu.Lock()
	now := s.cfg.Now()
	var matched []resident
	for _, id := range s.order {
		if rec := s.view(id, now); rec != nil && f.match(rec) {
			matched = append(matched, *rec)
		}
	}
	s.mu.Unlock()
	// s.order is creation order; created_at ties keep it.
	if field == "updated_at" {
		sort.SliceStable(matched, func(i, j int) bool { return str(matched[i].UpdatedAt) < str(matched[j].UpdatedAt) })
	}
	if dir == "desc" {
		slices.Reverse(matched)
	}
	total := len(matched)
	page := []resident{}
	if offset < total {
		page = matched[offset:min(total, offset+limit)]
	}
	writeJSON(w, http.StatusOK, listAnswer{
		Meta:    newListMeta(s.cfg.Variants, offset, limit, len(page), total),
		Results: page,
	})
}

func (s *Server) integrations(w http.ResponseWriter, r *http.Request) {
	var out []integration
	for id, vendor := range s.cfg.Integrations {
		out = append(out, integration{ID: id, Vendor: vendorEnum(vendor), Active: true, System: "SANDBOX", MaxJobConcurrency: s.cfg.MaxJobConcurrency})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, integrationsAnswer{Meta: newListMeta(s.cfg.Variants, 0, 100, len(out), len(out)), Results: out})
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
	writeJSON(w, http.StatusOK, propertiesAnswer{Meta: newListMeta(s.cfg.Variants, 0, 100, len(out), len(out)), Results: out})
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

// SaveResidents writes every resident the sandbox holds, as JSON, so that a
// sandbox started later can hold them too (LoadResidents): the in-process
// sandbox keeps its residents between two commands this way.
func (s *Server) SaveResidents(w io.Writer) error {
	s.mu.Lock()
	out := make([]resident, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.residents[id])
	}
	s.mu.Unlock()
	return json.NewEncoder(w).Encode(out)
}

// LoadResidents adds the residents SaveResidents wrote, as the cache shows
// them at once.
func (s *Server) LoadResidents(r io.Reader) error {
	var in []resident
	if err := json.NewDecoder(r).Decode(&in); err != nil {
		return fmt.Errorf("the saved residents are not readable: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range in {
		id := str(rec.ID)
		if id == "" {
			continue
		}
		if _, known := s.residents[id]; !known {
			s.order = append(s.order, id)
		}
		rec := rec
		s.residents[id] = &rec
	}
	return nil
}
