package sandbox

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"
)

// This file holds the webhook subscriptions of /v1/webhooks/: create,
// list, read and delete. Events go to every active subscription to their
// trigger (see webhooks.targets).

// webhookTriggers are the triggers a subscription may name.
var webhookTriggers = []string{"DATA_NEW", "DATA_UPDATE", "JOB_FAILURE", "SYNC_COMPLETE", "FIRST_SYNC_COMPLETE", "WRITE_OPERATION_FAILURE"}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var sub subscription
	if err != nil || json.Unmarshal(raw, &sub) != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a webhook", nil)
		return
	}
	var issues []issue
	if sub.URL == "" {
		issues = append(issues, issue{Code: "invalid_type", Path: []string{"url"}, Message: "Required"})
	}
	if len(sub.Triggers) == 0 {
		issues = append(issues, issue{Code: "too_small", Path: []string{"triggers"}, Message: "Array must contain at least 1 element(s)"})
	}
	for _, t := range sub.Triggers {
		if !slices.Contains(webhookTriggers, t) {
			issues = append(issues, issue{Code: "invalid_enum_value", Path: []string{"triggers"}, Message: "Invalid enum value: " + t})
		}
	}
	if len(sub.Secret) < 10 {
		issues = append(issues, issue{Code: "too_small", Path: []string{"secret"}, Message: "String must contain at least 10 character(s)"})
	}
	if len(issues) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "Invalid request body", issues)
		return
	}
	if sub.Headers == nil {
		sub.Headers = []webhookHeader{}
	}
	sub.ID, sub.CreatedAt = "wh_"+randomHex(8), s.cfg.Now().UTC().Format(time.RFC3339)
	s.hooks.mu.Lock()
	s.hooks.subs[sub.ID] = &sub
	s.hooks.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]any{}, "result": sub})
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	s.hooks.mu.Lock()
	out := []subscription{}
	for _, id := range slices.Sorted(maps.Keys(s.hooks.subs)) {
		out = append(out, *s.hooks.subs[id])
	}
	s.hooks.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"meta": newListMeta(s.cfg.Variants, 0, 100, len(out), len(out)), "results": out})
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	s.hooks.mu.Lock()
	sub, ok := s.hooks.subs[r.PathValue("id")]
	var out subscription
	if ok {
		out = *sub
	}
	s.hooks.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Webhook not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]any{}, "results": out})
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.hooks.mu.Lock()
	_, ok := s.hooks.subs[id]
	delete(s.hooks.subs, id)
	s.hooks.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Webhook not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true})
}
