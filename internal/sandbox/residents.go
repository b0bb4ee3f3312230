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
	rec.ID, rec.XID, rec.CreatedAt, rec.UpdatedAt, rec.LastSeen, rec.IntegrationVendor = &id, &x, &ts, &ts, &ts, &vendor
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
// (a new resident, whose DATA_NEW goes out when the cache reads it; an
// updated one's DATA_UPDATE goes out then too).
type lag struct {
	until     time.Time
	untilSync bool
	shown     *resident
	jobID     string // the write the cache has not read yet
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
		if !s.hooks.listening("DATA_NEW") && !s.hooks.listening("DATA_UPDATE") {
			delete(s.lagging, id) // over; else the sweep of resolveDue ends it, sending its event
		}
	}
	return s.residents[id]
}

// readBack ends the lags that have run out, or every lag of an integration
// when sync names one (a manual sync, which sees every resident of the
// integration in the PMS now), and sends the DATA_NEW of each new resident
// the cache now shows, the DATA_UPDATE of each updated one. Callers hold
// mu.
func (s *Server) readBack(now time.Time, sync string) {
	for id, l := range s.lagging {
		rec := s.residents[id]
		if sync != "" && str(rec.IntegrationID) != sync || sync == "" && (l.untilSync || now.Before(l.until)) {
			continue
		}
		delete(s.lagging, id)
		if l.shown == nil {
			s.hooks.dataNew(l.jobID, id, *rec)
		} else {
			s.hooks.dataUpdate(l.jobID, id, *rec)
		}
	}
	if sync == "" {
		return
	}
	ts := now.UTC().Format(time.RFC3339)
	for _, id := range s.order {
		if rec := s.residents[id]; str(rec.IntegrationID) == sync && !s.gone[id] {
			rec.LastSeen = &ts
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
// changes nothing: a field sent overwrites the record's, an empty string
// clears it. Callers hold mu.
func (s *Server) apply(id, jobID string, body resident, at time.Time) {
	rec, ok := s.residents[id]
	if !ok {
		return
	}
	before := *rec
	fields, sent := asFields(*rec), asFields(body)
	changed := false
	for k, v := range sent {
		if v == nil || !writable[k] || k == "integration_id" {
			continue
		}
		if v == "" {
			v = nil
		}
		if !reflect.DeepEqual(fields[k], v) {
			fields[k], changed = v, true
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
	rec.UpdatedAt, rec.LastSeen = &ts, &ts
	if s.remember(id, jobID, &before, at) {
		s.hooks.dataUpdate(jobID, id, *rec)
	}
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
	rec, ok := s.view(r.PathValue("id"), s.cfg.Now()), false
	var out resident
	if rec != nil {
		out, ok = *rec, true
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Resident not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, oneAnswer{Meta: newListMeta(s.cfg.Variants, 0, 100, 1, 1), Results: out.read()})
}

// pmsRecord answers GET /_sandbox/residents/{id}: the resident as the PMS
// holds it (rent terms and lease included, whatever the cache shows), so
// tests can check what a write did.
func (s *Server) pmsRecord(w http.ResponseWriter, r *http.Request) {
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
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

// listFilters are the documented filters of GET /v1/residents/; any other
// query parameter (a name, say) is ignored, as the API is assumed to.
type listFilters struct {
	integrationID, propertyID, leaseID, xID, xPropertyID, email, phone, vendor string
	updatedGTE, updatedLTE                                                     time.Time
}

// match compares as the docs say or, where they are silent, as exactly as
// can be: email_1 in its case.
func (f listFilters) match(rec *resident) bool {
	updated, _ := time.Parse(time.RFC3339, str(rec.UpdatedAt))
	return (f.integrationID == "" || str(rec.IntegrationID) == f.integrationID) &&
		(f.propertyID == "" || str(rec.PropertyID) == f.propertyID) &&
		(f.leaseID == "" || str(rec.LeaseID) == f.leaseID) &&
		(f.xID == "" || str(rec.XID) == f.xID) &&
		(f.xPropertyID == "" || rec.PropertyID != nil && XPropertyID(*rec.PropertyID) == f.xPropertyID) &&
		(f.email == "" || str(rec.Email1) == f.email) &&
		(f.phone == "" || digits(str(rec.Phone1)) == digits(f.phone)) &&
		(f.vendor == "" || strings.EqualFold(str(rec.IntegrationVendor), f.vendor)) &&
		(f.updatedGTE.IsZero() || !updated.Before(f.updatedGTE)) &&
		(f.updatedLTE.IsZero() || !updated.After(f.updatedLTE))
}

// XPropertyID is the PMS's own id of a sandbox property (x_property_id):
// prop_100's is 100.
func XPropertyID(propertyID string) string { return strings.TrimPrefix(propertyID, "prop_") }

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
		xID: q.Get("x_id"), xPropertyID: q.Get("x_property_id"), email: q.Get("email_1"), phone: q.Get("phone_1"), vendor: q.Get("integration_vendor")}
	if (f.xID != "" || f.xPropertyID != "") && (f.integrationID == "" || f.xPropertyID == "") {
		// A PMS may number its records per property: an external id
		// means something only within its integration and property.
		writeError(w, http.StatusBadRequest, "invalid_request", "x_id and x_property_id filters need integration_id and x_property_id", nil)
		return
	}
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
	page := []readModel{}
	if offset < total {
		for _, rec := range matched[offset:min(total, offset+limit)] {
			page = append(page, rec.read())
		}
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
	_, err := s.SeedResidents(r)
	return err
}

// SeedResidents adds residents to the PMS, as a JSON array of records in
// the write's fields (rent terms and lease included) plus, when the seed
// says them, id, x_id and last_seen; the cache shows them at once. A
// record without an id gets one (and an x_id, timestamps, its vendor, and
// last_seen now). It returns the ids, in order.
func (s *Server) SeedResidents(r io.Reader) ([]string, error) {
	var in []resident
	if err := json.NewDecoder(r).Decode(&in); err != nil {
		return nil, fmt.Errorf("the residents are not readable: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now().UTC().Format(time.RFC3339)
	ids := make([]string, 0, len(in))
	for _, rec := range in {
		id := str(rec.ID)
		if id == "" {
			id = "res_" + randomHex(10)
			rec.ID = &id
		}
		if rec.XID == nil {
			x := strconv.Itoa(100000 + len(s.order))
			rec.XID = &x
		}
		for _, ts := range []**string{&rec.CreatedAt, &rec.UpdatedAt, &rec.LastSeen} {
			if *ts == nil {
				*ts = &now
			}
		}
		if rec.IntegrationVendor == nil {
			vendor := vendorEnum(s.cfg.Integrations[str(rec.IntegrationID)])
			rec.IntegrationVendor = &vendor
		}
		if _, known := s.residents[id]; !known {
			s.order = append(s.order, id)
		}
		s.residents[id] = &rec
		ids = append(ids, id)
	}
	return ids, nil
}

func (s *Server) seed(w http.ResponseWriter, r *http.Request) {
	ids, err := s.SeedResidents(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ids": ids})
}

// Gone takes a resident out of the PMS, as someone deleting it there
// would: Propexo's cache keeps the record (it never deletes one) with the
// last_seen of the last sync that saw it.
func (s *Server) Gone(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.residents[id]; !ok {
		return false
	}
	s.gone[id] = true
	return true
}

func (s *Server) goneFromPMS(w http.ResponseWriter, r *http.Request) {
	if !s.Gone(r.PathValue("id")) {
		writeError(w, http.StatusNotFound, "not_found", "Resident not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"gone": r.PathValue("id")})
}
