package sandbox

import (
	"fmt"
	"slices"
	"strings"
)

// Variants are the behaviours Propexo's documents leave open. The sandbox
// plays each one, so that the importer is tested against all of them rather
// than against the one it was written for. The zero value of each field is
// the documented example's behaviour.
type Variants struct {
	// UnknownJobStatus is the HTTP status of a write-status read of a job
	// the API does not know: 404 (default) or 400. Undocumented.
	UnknownJobStatus int `json:"unknown_job_status,omitempty"`
	// CreatedRecordID is what a SUCCESS carries in created_record_id:
	// RecordResident (default), RecordNull (null, as for some PMS), or
	// RecordOther (the id of another object the job created: "not a
	// complete solution", say the docs).
	CreatedRecordID string `json:"created_record_id,omitempty"`
	// DataNew is what the DATA_NEW webhook of a created resident carries in
	// root_job_id: DataNewWrite (default, the write's job id), DataNewSync
	// (the id of the sync job that read the record back, as in the
	// documented example), or DataNewNone (no DATA_NEW at all).
	DataNew string `json:"data_new,omitempty"`
	// DataUpdate is what the DATA_UPDATE of an updated resident carries
	// in root_job_id, with DataNew's choices.
	DataUpdate string `json:"data_update,omitempty"`
	// CreateAnswer is the shape of a write's answer: AnswerFile (default,
	// {job_id, data}, as the published OpenAPI file has it) or AnswerMeta
	// ({meta: {job_id}, result}, as the docs pages and the video show it;
	// its answers are not checked against the file).
	CreateAnswer string `json:"create_answer,omitempty"`
	// HasMore is how a list's meta says more pages follow: HasMoreBool
	// (default, with total) or HasMoreNull (hasMore null, no total: the
	// client stops on a short page).
	HasMore string `json:"has_more,omitempty"`
}

// The values of the variants.
const (
	RecordResident = "resident"
	RecordNull     = "null"
	RecordOther    = "other"

	DataNewWrite = "write"
	DataNewSync  = "sync"
	DataNewNone  = "none"

	AnswerFile = "file"
	AnswerMeta = "meta"

	HasMoreBool = "bool"
	HasMoreNull = "null"
)

// variantChoices lists each variant's values, the default first.
var variantChoices = map[string][]string{
	"created_record_id": {RecordResident, RecordNull, RecordOther},
	"data_new":          {DataNewWrite, DataNewSync, DataNewNone},
	"data_update":       {DataNewWrite, DataNewSync, DataNewNone},
	"create_answer":     {AnswerFile, AnswerMeta},
	"has_more":          {HasMoreBool, HasMoreNull},
}

// withDefaults fills every zero field with its default.
func (v Variants) withDefaults() Variants {
	if v.UnknownJobStatus == 0 {
		v.UnknownJobStatus = 404
	}
	for name, dst := range v.fields() {
		if *dst == "" {
			*dst = variantChoices[name][0]
		}
	}
	return v
}

func (v *Variants) fields() map[string]*string {
	return map[string]*string{"created_record_id": &v.CreatedRecordID, "data_new": &v.DataNew, "data_update": &v.DataUpdate,
		"create_answer": &v.CreateAnswer, "has_more": &v.HasMore}
}

// Validate says which variant has a value the sandbox cannot play.
func (v Variants) Validate() error {
	if v.UnknownJobStatus != 0 && v.UnknownJobStatus != 400 && v.UnknownJobStatus != 404 {
		return fmt.Errorf("unknown_job_status %d: use 404 or 400", v.UnknownJobStatus)
	}
	for name, dst := range v.fields() {
		if *dst != "" && !slices.Contains(variantChoices[name], *dst) {
			return fmt.Errorf("%s %q: use one of %s", name, *dst, strings.Join(variantChoices[name], ", "))
		}
	}
	return nil
}

// VariantChoices lists the values of a variant, the default first, for
// flag help.
func VariantChoices(name string) []string { return variantChoices[name] }

// vendorEnum is a vendor as answers and webhooks name it: the upper-case
// enum (RENTMANAGER, PROPERTYWARE_REST) of its path slug.
func vendorEnum(slug string) string { return strings.ToUpper(slug) }
