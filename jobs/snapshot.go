package jobs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// This file holds a sync's snapshot: the residents of an import's scopes,
// listed once (or looked up by key when that costs fewer requests) and
// stored page by page.

// storedSnapshot returns the import's snapshot, listing the pages it does
// not have yet and storing each as it comes.
func (fd *Feeding) storedSnapshot(ctx context.Context, imp importer.Import) (*importer.Snapshot, error) {
	pages, complete, err := fd.store.SnapshotPages(ctx, imp.ID)
	if err != nil {
		return nil, err
	}
	if !complete {
		wants, err := fd.scopes(ctx, imp)
		if err != nil {
			return nil, err
		}
		n := len(pages)
		err = fd.list(ctx, imp.ID, wants, pages, func(page importer.SnapshotPage, last bool) error {
			pages = append(pages, page)
			n++
			return fd.store.SaveSnapshotPage(ctx, imp.ID, n-1, page, last)
		})
		if err != nil {
			return nil, err
		}
	}
	return snapshotOf(pages), nil
}

func snapshotOf(pages []importer.SnapshotPage) *importer.Snapshot {
	snap := importer.NewSnapshot()
	for _, page := range pages {
		for _, rec := range page.Records {
			snap.Add(rec)
		}
	}
	return snap
}

// scopeWant is what a snapshot needs of one scope (an integration, or one
// property of it): the keys its rows can be looked up by, one filtered
// request each (x_id, email_1), and whether some row needs the whole scope
// listed (name+dob is no filter).
type scopeWant struct {
	scope        importer.ListScope
	keys         []importer.ListScope // the scope with a key's filter
	needsListing bool
}

// scopeWants gathers, row by row, what a snapshot needs.
type scopeWants struct {
	opts importer.Options
	on   []importer.MatchKey
	by   map[importer.ListScope]*scopeWant
}

func newScopeWants(opts importer.Options) *scopeWants {
	return &scopeWants{opts: opts, on: importer.MatchKeys(opts.MatchOn), by: map[importer.ListScope]*scopeWant{}}
}

func (w *scopeWants) add(r importer.Resident) {
	s := importer.ListScope{IntegrationID: r.IntegrationID}
	if w.opts.PropertyID != "" && r.PropertyID == w.opts.PropertyID {
		s.PropertyID = w.opts.PropertyID
	}
	want := w.by[s]
	if want == nil {
		want = &scopeWant{scope: s}
		w.by[s] = want
	}
	key, ok := importer.MatchKeyOf(r, w.on)
	if !ok {
		return // matched by nothing: created without a look-up
	}
	filtered, ok := importer.FilterOf(s, r, key)
	if !ok {
		want.needsListing = true
		return
	}
	want.keys = append(want.keys, filtered)
}

// sorted returns the wants in a fixed order, so a retried listing asks for
// the same pages in the same order.
func (w *scopeWants) sorted() []scopeWant {
	out := make([]scopeWant, 0, len(w.by))
	for _, want := range w.by {
		slices.SortFunc(want.keys, compareScopes)
		want.keys = slices.Compact(want.keys)
		out = append(out, *want)
	}
	slices.SortFunc(out, func(a, b scopeWant) int { return compareScopes(a.scope, b.scope) })
	return out
}

func compareScopes(a, b importer.ListScope) int {
	return strings.Compare(a.IntegrationID+"\x00"+a.PropertyID+"\x00"+a.XID+"\x00"+a.Email,
		b.IntegrationID+"\x00"+b.PropertyID+"\x00"+b.XID+"\x00"+b.Email)
}

// scopes are what an import's snapshot needs, from its stored rows.
func (fd *Feeding) scopes(ctx context.Context, imp importer.Import) ([]scopeWant, error) {
	v := importer.NewValidator(imp.Options)
	wants := newScopeWants(imp.Options)
	for row, err := range fd.store.Rows(ctx, imp.ID, imp.Total) {
		if err != nil {
			return nil, err
		}
		if row.Result.Outcome == importer.Invalid || row.Result.Outcome == importer.Duplicate {
			continue
		}
		r, problems := v.Resident(v.Row(row.Result.Row, row.Result.Line, row.Columns))
		if len(problems) == 0 {
			wants.add(r)
		}
	}
	return wants.sorted(), nil
}

// list builds a snapshot's pages: for each scope, its first page (250
// residents, oldest first); then, from the first page's total, whichever
// costs fewer requests — the rest of the scope's pages, or one filtered
// look-up per row key (x_id=, email_1=) when no row needs the whole scope
// (a name+dob key). Pages already listed (done) are not asked for again:
// the same wants give the same requests in the same order. save gets each
// new page, and last on the listing's last.
func (fd *Feeding) list(ctx context.Context, importID string, wants []scopeWant, done []importer.SnapshotPage,
	save func(page importer.SnapshotPage, last bool) error) error {
	if fd.api == nil {
		return errors.New("this process has no API to list residents with")
	}
	have := map[importer.ListScope]map[int]importer.SnapshotPage{}
	for _, p := range done {
		if have[p.Scope] == nil {
			have[p.Scope] = map[int]importer.SnapshotPage{}
		}
		have[p.Scope][p.Offset] = p
	}
	// pages lists one scope from offset on, the stored pages first.
	pages := func(scope importer.ListScope, offset, limit int) (first importer.SnapshotPage, err error) {
		for n := 0; limit <= 0 || n < limit; n++ {
			page, ok := have[scope][offset]
			if !ok {
				if page, err = fd.listPage(ctx, importID, scope, offset); err != nil {
					return first, err
				}
				if err := save(page, false); err != nil {
					return first, err
				}
			}
			if n == 0 {
				first = page
			}
			if !page.More || len(page.Records) == 0 {
				break
			}
			offset += len(page.Records)
		}
		return first, nil
	}
	for _, want := range wants {
		if !want.needsListing && len(want.keys) == 0 {
			continue // no row of the scope has a key to match on
		}
		first, err := pages(want.scope, 0, 1)
		if err != nil {
			return err
		}
		if !first.More {
			continue
		}
		left := (max(first.Total, 0) - len(first.Records) + importer.ListPageSize - 1) / importer.ListPageSize
		if want.needsListing || first.Total < 0 || len(want.keys) >= left {
			if _, err := pages(want.scope, len(first.Records), 0); err != nil {
				return err
			}
			continue
		}
		for _, key := range want.keys {
			if _, err := pages(key, 0, 0); err != nil {
				return err
			}
		}
	}
	return save(importer.SnapshotPage{}, true)
}

// listPage reads one page of a scope, waiting in place for the rate limit
// when it lists for a preview (no import: importer plan).
func (fd *Feeding) listPage(ctx context.Context, importID string, scope importer.ListScope, offset int) (importer.SnapshotPage, error) {
	for {
		err := fd.take(ctx, importID, 1)
		var wait *waitError
		if importID == "" && errors.As(err, &wait) {
			select {
			case <-ctx.Done():
				return importer.SnapshotPage{}, ctx.Err()
			case <-time.After(wait.after):
				continue
			}
		}
		if err != nil {
			return importer.SnapshotPage{}, err // a task is tried again after the wait
		}
		recs, more, total, err := fd.api.ListResidents(ctx, scope, offset)
		fd.countRequest(ctx, importID, importer.EndpointListResidents, err)
		if err != nil {
			return importer.SnapshotPage{}, err
		}
		return importer.SnapshotPage{Scope: scope, Offset: offset, More: more, Total: total, Records: recs}, nil
	}
}
