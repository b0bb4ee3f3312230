package sandbox

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"slices"
	"sort"
	"strings"
	"time"
)

// This file holds the write jobs: a create (or retry-write) answers with a
// job id at once; the job stays PENDING for its latency, then resolves.

type job struct {
	id        string
	resolveAt time.Time
	status    string // PENDING, SUCCESS, PARTIAL_SUCCESS, FAILURE
	outcome   string // what it turns into
	errors    []string
	body      resident
	recordID  string
	updateOf  string // the resident an update job writes to; "" for a create
	stuck     bool   // never resolves
	index     int    // in the pending heap
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	pathVendor := r.PathValue("vendor")
	if pathVendor != "" && cannotCreate[pathVendor] {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", pathVendor+" does not support creating residents", nil)
		return
	}
	if pathVendor != "" && !perVendorPaths[pathVendor] {
		writeError(w, http.StatusNotFound, "not_found", "unknown vendor "+pathVendor, nil)
		return
	}
	body, issues, ok := readBody(w, r, bodyFields(r.Method, r.URL.Path, pathVendor))
	if !ok {
		return
	}

	integrationID := str(body.IntegrationID)
	vendor, known := s.cfg.Integrations[integrationID]
	switch {
	case integrationID == "":
		issues = append(issues, issue{Code: "invalid_type", Path: []string{"integration_id"}, Message: "Required"})
	case !known:
		issues = append(issues, issue{Code: "custom", Path: []string{"integration_id"}, Message: "Integration not found"})
	case cannotCreate[vendor]:
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", vendor+" does not support creating residents", nil)
		return
	case pathVendor != "" && pathVendor != vendor:
		issues = append(issues, issue{Code: "custom", Path: []string{"integration_id"}, Message: fmt.Sprintf("Integration is a %s integration, not %s", vendor, pathVendor)})
	}
	issues = append(issues, vendorIssues(vendor, body)...)
	if len(issues) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "Invalid request body", issues)
		return
	}

	s.mu.Lock()
	j := s.newJob(body, vendor)
	s.stats.Creates++
	s.stats.CreatesByIdentity[identity(body)]++
	s.mu.Unlock()

	s.writeAnswer(w, j.id, body)
}

// writeAnswer answers a write with its job id, in the shape the variant
// picks: the published file's {job_id, data}, or the {meta: {job_id},
// result} of the docs pages.
func (s *Server) writeAnswer(w http.ResponseWriter, jobID string, body resident) {
	if s.cfg.Variants.CreateAnswer == AnswerMeta {
		writeJSON(w, http.StatusOK, metaAnswer{Meta: createMeta{JobID: jobID}, Result: body})
		return
	}
	writeJSON(w, http.StatusOK, writeAnswer{JobID: jobID, Data: body})
}

// unknownJob answers a request for a job the API does not know, with the
// status the variant picks: 404, or 400 (undocumented either way).
func (s *Server) unknownJob(w http.ResponseWriter) {
	if s.cfg.Variants.UnknownJobStatus == http.StatusBadRequest {
		writeError(w, http.StatusBadRequest, "invalid_request", "Invalid root_job_id", nil)
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "Job not found", nil)
}

// readBody reads a write's body: the resident it carries and, unless the
// query has ignore_unknown_fields=true, an issue for each field takes does
// not hold (a vendor's path takes fewer fields than the generic one, whose
// keys the published file's schema has checked already; see checked). A
// body that is no JSON object is answered 400 here (ok false).
func readBody(w http.ResponseWriter, r *http.Request, takes map[string]bool) (body resident, issues []issue, ok bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "cannot read the body", nil)
		return body, nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a JSON object", nil)
		return body, nil, false
	}
	if r.URL.Query().Get("ignore_unknown_fields") != "true" {
		var unknown []string
		for k := range fields {
			if !takes[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			issues = append(issues, issue{Code: "unrecognized_keys", Path: []string{k}, Message: "Unrecognized key: " + k})
		}
	}
	for k := range fields {
		if !takes[k] {
			delete(fields, k) // ignored (ignore_unknown_fields=true): not written either
		}
	}
	kept, _ := json.Marshal(fields) // raw JSON values: cannot fail
	if err := json.Unmarshal(kept, &body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "a field has the wrong type: "+err.Error(), nil)
		return body, nil, false
	}
	return body, issues, true
}

// bodyFields is the set of keys the body of a write takes: the published
// file's schema of the operation, narrowed to the vendor's own fields on a
// vendor's path.
func bodyFields(method, path, vendor string) map[string]bool {
	out := map[string]bool{}
	for _, f := range spec().BodyFields(method, path) {
		if vendor == "" || vendorTakes[vendor][f] {
			out[f] = true
		}
	}
	return out
}

// update answers PUT /v1/residents/{id} and /v1/residents/{vendor}/{id}:
// a write job, like a create, that applies the fields sent to the resident
// when it succeeds. The body takes the published PUT's fields (no
// integration, property or lease: a resident does not move that way; no
// null), each optional in the generic form; Rent Manager's update requires
// last_name, rent_period and rent_due_day; a phone_1 travels with its
// phone_1_type. An empty string clears a field (how to clear one is
// undocumented; this is the sandbox's reading).
func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	pathVendor, id := r.PathValue("vendor"), r.PathValue("id")
	if pathVendor != "" && !perVendorPaths[pathVendor] {
		writeError(w, http.StatusNotFound, "not_found", "unknown vendor "+pathVendor, nil)
		return
	}
	body, issues, ok := readBody(w, r, bodyFields(r.Method, r.URL.Path, pathVendor))
	if !ok {
		return
	}
	s.mu.Lock()
	rec, exists := s.residents[id]
	var vendor string
	if exists {
		vendor = s.cfg.Integrations[str(rec.IntegrationID)]
	}
	s.mu.Unlock()
	if !exists {
		writeError(w, http.StatusNotFound, "not_found", "Resident not found", nil)
		return
	}
	if pathVendor != "" && pathVendor != vendor {
		issues = append(issues, issue{Code: "custom", Path: []string{"id"}, Message: fmt.Sprintf("Resident belongs to a %s integration, not %s", vendor, pathVendor)})
	}
	switch pathVendor {
	case "rentmanager":
		for name, v := range map[string]*string{"last_name": body.LastName, "rent_period": body.RentPeriod} {
			if v == nil || strings.TrimSpace(*v) == "" {
				issues = append(issues, issue{Code: "invalid_type", Path: []string{name}, Message: "Required"})
			}
		}
		if body.RentDueDay == nil {
			issues = append(issues, issue{Code: "invalid_type", Path: []string{"rent_due_day"}, Message: "Required"})
		}
	case "buildium":
		for name, v := range map[string]*string{"first_name": body.FirstName, "last_name": body.LastName, "address_1": body.Address1,
			"city": body.City, "state": body.State, "zip": body.Zip, "country": body.Country} {
			if v == nil || strings.TrimSpace(*v) == "" {
				issues = append(issues, issue{Code: "invalid_type", Path: []string{name}, Message: "Required"})
			}
		}
	}
	if body.Phone1 != nil && body.Phone1Type == nil {
		issues = append(issues, issue{Code: "invalid_type", Path: []string{"phone_1_type"}, Message: "Required when phone_1 is sent"})
	}
	if len(issues) > 0 {
		sort.Slice(issues, func(i, j int) bool { return issues[i].Path[0] < issues[j].Path[0] })
		writeError(w, http.StatusBadRequest, "invalid_request", "Invalid request body", issues)
		return
	}
	body.IntegrationID = rec.IntegrationID
	s.mu.Lock()
	j := s.newJob(body, vendor)
	j.updateOf = id
	s.stats.Updates++
	s.mu.Unlock()
	s.writeAnswer(w, j.id, body)
}

// identity names a resident for the duplicate count.
func identity(b resident) string {
	return strings.ToLower(strings.Join([]string{str(b.IntegrationID), str(b.Email1), str(b.FirstName), str(b.LastName)}, "|"))
}

// newJob makes a write job and decides now how it will end. Callers hold mu.
// jobSlot returns when a job written now resolves: after its latency, or,
// with MaxJobConcurrency, after its latency from when one of its
// integration's slots is free (the earliest one; first come, first
// served). s.mu is held.
func (s *Server) jobSlot(integrationID string, now time.Time, latency time.Duration) time.Time {
	at := s.queueJob(integrationID, now, latency)
	if s.unresolved == nil {
		s.unresolved = map[string][]time.Time{}
	}
	pending := slices.DeleteFunc(s.unresolved[integrationID], func(t time.Time) bool { return !t.After(now) })
	pending = append(pending, at)
	s.unresolved[integrationID] = pending
	s.stats.MostPending[integrationID] = max(s.stats.MostPending[integrationID], len(pending))
	return at
}

// queueJob is jobSlot without the counting.
func (s *Server) queueJob(integrationID string, now time.Time, latency time.Duration) time.Time {
	n := s.cfg.MaxJobConcurrency
	if n <= 0 {
		return now.Add(latency)
	}
	if s.running == nil {
		s.running = map[string][]time.Time{}
	}
	slots := s.running[integrationID]
	if len(slots) < n {
		s.running[integrationID] = append(slots, now.Add(latency))
		return now.Add(latency)
	}
	first := 0
	for i, free := range slots {
		if free.Before(slots[first]) {
			first = i
		}
	}
	start := slots[first]
	if start.Before(now) {
		start = now
	}
	slots[first] = start.Add(latency)
	return slots[first]
}

func (s *Server) newJob(body resident, vendor string) *job {
	now := s.cfg.Now()
	j := &job{
		id:        "job_" + randomHex(12),
		resolveAt: s.jobSlot(str(body.IntegrationID), now, s.cfg.Latency.sample(s.rng)),
		status:    "PENDING",
		outcome:   "SUCCESS",
		body:      body,
	}
	draw := s.rng.Float64()
	failureRate := s.cfg.FailureRate
	if s.faults.FailureRate != nil {
		failureRate = *s.faults.FailureRate
	}
	switch {
	case body.PropertyID != nil && s.cfg.Properties[*body.PropertyID] != str(body.IntegrationID) && vendor == "rentmanager":
		j.outcome = "FAILURE"
		j.errors = []string{pmsError(400, fmt.Sprintf("Property %q was not found in Rent Manager", *body.PropertyID))}
	case draw < failureRate:
		j.outcome = "FAILURE"
		j.errors = []string{pmsError(503, "The PMS is undergoing maintenance; try again later")}
	case draw < failureRate+s.cfg.PartialRate:
		j.outcome = "PARTIAL_SUCCESS"
		j.errors = []string{pmsError(422, "The resident was created but their contact preferences could not be saved")}
	case draw < failureRate+s.cfg.PartialRate+s.cfg.StuckRate:
		j.stuck = true
	}
	if j.stuck {
		s.jobs[j.id] = j
		return j
	}
	s.jobs[j.id] = j
	heap.Push(&s.pending, j)
	return j
}

// pmsError renders a PMS message as the stringified JSON real PMS send.
func pmsError(status int, message string) string {
	b, _ := json.Marshal(map[string]any{"StatusCode": status, "Message": message})
	return string(b)
}

// resolveDue ends every write whose latency has passed. Callers hold mu.
func (s *Server) resolveDue() {
	now := s.cfg.Now()
	if len(s.lagging) > 0 && s.hooks.listening("DATA_NEW") {
		s.readBack(now, "") // else get and list end each lag as they meet it
	}
	for s.pending.Len() > 0 && !s.pending[0].resolveAt.After(now) {
		j := heap.Pop(&s.pending).(*job)
		j.status = j.outcome
		switch {
		case j.outcome != "SUCCESS" && j.outcome != "PARTIAL_SUCCESS":
		case j.updateOf != "":
			j.recordID = j.updateOf
			s.apply(j.updateOf, j.id, j.body, j.resolveAt)
		default:
			j.recordID = s.store(j.id, j.body, j.resolveAt)
		}
		s.hooks.resolved(j)
	}
}

func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j, ok := s.jobs[r.PathValue("job")]
	if ok && !strings.HasPrefix(r.URL.Path, "/_sandbox/") && s.faults.StatusNotFoundRate > 0 && s.rng.Float64() < s.faults.StatusNotFoundRate {
		s.stats.Faults["status_not_found"]++
		ok = false
	}
	var answer writeStatusAnswer
	if ok {
		answer = writeStatusAnswer{WriteStatus: j.status, Errors: append([]string{}, j.errors...)}
		if j.status == "PENDING" {
			answer.Errors = []string{}
		}
		answer.CreatedRecordID = s.createdRecordID(j)
	}
	s.mu.Unlock()
	if !ok {
		s.unknownJob(w)
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

// createdRecordID is what write-status says of a job's record: the
// resident's id, or, for a create under the variants that say so, null or
// the id of another object the job made. Callers hold mu.
func (s *Server) createdRecordID(j *job) *string {
	if j.recordID == "" {
		return nil
	}
	id := j.recordID
	if j.updateOf == "" {
		switch s.cfg.Variants.CreatedRecordID {
		case RecordNull:
			return nil
		case RecordOther:
			id = "lease_tenant_" + strings.TrimPrefix(j.id, "job_")
		}
	}
	return &id
}

func (s *Server) retryWrite(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	old, ok := s.jobs[r.PathValue("job")]
	var fresh *job
	if ok && old.status == "FAILURE" {
		body := old.body
		fresh = s.newJob(body, s.cfg.Integrations[str(body.IntegrationID)])
		// A retried update writes to the same resident.
		fresh.updateOf = old.updateOf
	}
	s.mu.Unlock()
	switch {
	case !ok:
		s.unknownJob(w)
	case fresh == nil:
		writeError(w, http.StatusBadRequest, "invalid_request", "Only writes with status FAILURE can be retried", nil)
	default:
		writeJSON(w, http.StatusOK, retryAnswer{Success: true, JobID: fresh.id})
	}
}

// vendorIssues checks a create body against the rules of its integration's
// vendor and the API's field formats.
func vendorIssues(vendor string, b resident) []issue {
	var issues []issue
	required := func(name string, v *string) {
		if v == nil || strings.TrimSpace(*v) == "" {
			issues = append(issues, issue{Code: "invalid_type", Path: []string{name}, Message: "Required"})
		}
	}
	switch vendor {
	case "rentmanager":
		required("property_id", b.PropertyID)
		required("rent_period", b.RentPeriod)
		required("first_name", b.FirstName)
		required("last_name", b.LastName)
		if b.RentDueDay == nil {
			issues = append(issues, issue{Code: "invalid_type", Path: []string{"rent_due_day"}, Message: "Required"})
		}
	case "buildium":
		for name, v := range map[string]*string{"lease_id": b.LeaseID, "first_name": b.FirstName, "last_name": b.LastName, "address_1": b.Address1, "city": b.City, "state": b.State, "zip": b.Zip, "country": b.Country} {
			required(name, v)
		}
		for name, v := range map[string]*string{"address_1": b.Address1, "address_2": b.Address2, "city": b.City} {
			if v != nil && len([]rune(*v)) > 100 {
				issues = append(issues, issue{Code: "too_big", Path: []string{name}, Message: "String must contain at most 100 character(s)"})
			}
		}
		if b.Country != nil && *b.Country != "" && *b.Country != "US" {
			issues = append(issues, issue{Code: "invalid_enum_value", Path: []string{"country"}, Message: "Invalid enum value. Expected 'US'"})
		}
	case "propertyware_rest":
		for name, v := range map[string]*string{"first_name": b.FirstName, "last_name": b.LastName, "address_1": b.Address1, "city": b.City, "state": b.State, "zip": b.Zip, "country": b.Country} {
			required(name, v)
		}
		for name, v := range map[string]*string{"first_name": b.FirstName, "last_name": b.LastName} {
			if v != nil && len([]rune(*v)) > 30 {
				issues = append(issues, issue{Code: "too_big", Path: []string{name}, Message: "String must contain at most 30 character(s)"})
			}
		}
	}
	for name, v := range map[string]*string{"email_1": b.Email1, "email_2": b.Email2} {
		if v != nil {
			if addr, err := mail.ParseAddress(*v); err != nil || addr.Address != *v {
				issues = append(issues, issue{Code: "invalid_string", Path: []string{name}, Message: "Invalid email"})
			}
		}
	}
	if b.DateOfBirth != nil {
		if _, err := time.Parse(time.RFC3339, *b.DateOfBirth); err != nil {
			issues = append(issues, issue{Code: "invalid_string", Path: []string{"date_of_birth"}, Message: "Invalid datetime"})
		}
	}
	for name, v := range map[string]*string{"phone_1_type": b.Phone1Type, "phone_2_type": b.Phone2Type} {
		if v != nil && !oneOf(*v, "FAX", "HOME", "MOBILE", "OTHER", "WORK") {
			issues = append(issues, issue{Code: "invalid_enum_value", Path: []string{name}, Message: "Invalid enum value. Expected 'FAX' | 'HOME' | 'MOBILE' | 'OTHER' | 'WORK'"})
		}
	}
	if b.RentPeriod != nil && !oneOf(*b.RentPeriod, "MONTHLY", "WEEKLY", "DAILY") {
		issues = append(issues, issue{Code: "invalid_enum_value", Path: []string{"rent_period"}, Message: "Invalid enum value. Expected 'MONTHLY' | 'WEEKLY' | 'DAILY'"})
	}
	if b.RentDueDay != nil && (*b.RentDueDay < 1 || *b.RentDueDay > 31) {
		issues = append(issues, issue{Code: "too_big", Path: []string{"rent_due_day"}, Message: "Number must be between 1 and 31"})
	}
	sort.Slice(issues, func(i, j int) bool { return issues[i].Path[0] < issues[j].Path[0] })
	return issues
}

// jobQueue is a min-heap of pending jobs by resolve time.
type jobQueue []*job

func (q jobQueue) Len() int           { return len(q) }
func (q jobQueue) Less(i, j int) bool { return q[i].resolveAt.Before(q[j].resolveAt) }
func (q jobQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *jobQueue) Push(x any) {
	j := x.(*job)
	j.index = len(*q)
	*q = append(*q, j)
}
func (q *jobQueue) Pop() any {
	old := *q
	j := old[len(old)-1]
	*q = old[:len(old)-1]
	return j
}
