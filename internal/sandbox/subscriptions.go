package sandbox

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// This file holds the webhook subscriptions of /v1/webhooks/: create,
// list, read, update and delete, in the published file's shapes (triggers
// answered as objects, {id, trigger, model}, not the strings posted).
// Events go to every active subscription to their trigger (see
// webhooks.targets).

// subscriptionBody is what POST and PUT /v1/webhooks/ take.
type subscriptionBody struct {
	URL      *string         `json:"url"`
	Triggers []string        `json:"triggers"`
	Model    *string         `json:"model"`
	Secret   *string         `json:"secret"`
	Headers  []webhookHeader `json:"headers"`
	Active   *bool           `json:"active"`
}

// subscriptionAnswer is a subscription as the answers show it.
type subscriptionAnswer struct {
	ID        string          `json:"id"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
	URL       string          `json:"url"`
	Headers   []webhookHeader `json:"headers"`
	Active    bool            `json:"active"`
	Secret    string          `json:"secret"`
	System    string          `json:"system"`
	Triggers  []triggerAnswer `json:"triggers"`
}

type triggerAnswer struct {
	ID      string  `json:"id"`
	Trigger string  `json:"trigger"`
	Model   *string `json:"model"`
}

func (sub *subscription) answer() subscriptionAnswer {
	out := subscriptionAnswer{ID: sub.ID, CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt, URL: sub.URL, Headers: sub.Headers,
		Active: sub.Active, Secret: sub.Secret, System: "SANDBOX", Triggers: []triggerAnswer{}}
	if out.Headers == nil {
		out.Headers = []webhookHeader{}
	}
	for _, t := range sub.Triggers {
		var model *string
		if sub.Model != "" {
			m := sub.Model
			model = &m
		}
		out.Triggers = append(out.Triggers, triggerAnswer{ID: sub.triggerIDs[t], Trigger: t, Model: model})
	}
	return out
}

// readSubscription reads a subscription's body; the published file has
// checked its shape (url, triggers, secret of 10 or more).
func readSubscription(w http.ResponseWriter, r *http.Request) (subscriptionBody, bool) {
	var body subscriptionBody
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(raw, &body) != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a webhook", nil)
		return body, false
	}
	return body, true
}

// apply sets the fields a body names.
func (sub *subscription) apply(b subscriptionBody, now string) {
	if b.URL != nil {
		sub.URL = *b.URL
	}
	if b.Triggers != nil {
		sub.Triggers = nil
		for _, t := range b.Triggers {
			if !slices.Contains(sub.Triggers, t) {
				sub.Triggers = append(sub.Triggers, t)
			}
		}
		for _, t := range sub.Triggers {
			if sub.triggerIDs[t] == "" {
				sub.triggerIDs[t] = "wht_" + randomHex(6)
			}
		}
	}
	if b.Model != nil {
		sub.Model = *b.Model
	}
	if b.Secret != nil {
		sub.Secret = *b.Secret
	}
	if b.Headers != nil {
		sub.Headers = b.Headers
	}
	if b.Active != nil {
		sub.Active = *b.Active
	}
	sub.UpdatedAt = now
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	body, ok := readSubscription(w, r)
	if !ok {
		return
	}
	now := s.cfg.Now().UTC().Format(time.RFC3339)
	sub := &subscription{ID: "wh_" + randomHex(8), CreatedAt: now, triggerIDs: map[string]string{}}
	sub.apply(body, now)
	s.hooks.mu.Lock()
	s.hooks.subs[sub.ID] = sub
	out := sub.answer()
	s.hooks.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"result": out})
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	body, ok := readSubscription(w, r)
	if !ok {
		return
	}
	s.hooks.mu.Lock()
	sub, found := s.hooks.subs[r.PathValue("id")]
	var out subscriptionAnswer
	if found {
		sub.apply(body, s.cfg.Now().UTC().Format(time.RFC3339))
		out = sub.answer()
	}
	s.hooks.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "not_found", "Webhook not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": out})
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, limit, ok := paging(w, q.Get("offset"), q.Get("limit"))
	if !ok {
		return
	}
	active := q.Get("active") != "false" // those whose active is this; the file's default: true
	s.hooks.mu.Lock()
	all := []subscriptionAnswer{}
	for _, id := range slices.Sorted(maps.Keys(s.hooks.subs)) {
		if sub := s.hooks.subs[id]; sub.Active == active {
			all = append(all, sub.answer())
		}
	}
	s.hooks.mu.Unlock()
	slices.SortStableFunc(all, func(a, b subscriptionAnswer) int { return strings.Compare(a.CreatedAt, b.CreatedAt) })
	page := []subscriptionAnswer{}
	if offset < len(all) {
		page = all[offset:min(len(all), offset+limit)]
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": newListMeta(s.cfg.Variants, offset, limit, len(page), len(all)), "results": page})
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	s.hooks.mu.Lock()
	sub, ok := s.hooks.subs[r.PathValue("id")]
	var out subscriptionAnswer
	if ok {
		out = sub.answer()
	}
	s.hooks.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Webhook not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": newListMeta(s.cfg.Variants, 0, 100, 1, 1), "results": out})
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
	writeJSON(w, http.StatusOK, map[string]any{"result": map[string]string{"id": id}})
}
