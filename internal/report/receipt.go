package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// ReceiptFile is the file in an import's report folder that records, on the
// machine that started the import, that it was started.
const ReceiptFile = "import.json"

// Receipt is what the machine that started an import remembers of it,
// outside Redis: when Redis loses its data, the receipt tells a run of the
// same file that the import existed (and that its rows may have been sent),
// so the run looks each row up before sending it instead of sending blindly.
type Receipt struct {
	ImportID   string    `json:"import_id"`
	File       string    `json:"file"`
	FileSHA256 string    `json:"file_sha256"`
	StartedAt  time.Time `json:"started_at"`
	// Epoch is the life of Redis the import was made in.
	Epoch string `json:"epoch"`
	// Redis names the Redis, without credentials.
	Redis string `json:"redis"`
}

// WriteReceipt writes an import's receipt into reportDir/<import id>/,
// readable by its owner only.
func WriteReceipt(reportDir string, r Receipt) error {
	dir := Dir(reportDir, r.ImportID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("error creating the report folder: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("error encoding %s: %w", ReceiptFile, err)
	}
	return WriteAtomically(dir, ReceiptFile, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// ReadReceipt reads an import's receipt; ok is false when there is none.
func ReadReceipt(reportDir, importID string) (r Receipt, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(Dir(reportDir, importID), ReceiptFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Receipt{}, false, nil
	}
	if err != nil {
		return Receipt{}, false, fmt.Errorf("error reading the receipt of %s: %w", importID, err)
	}
	if err := json.Unmarshal(b, &r); err != nil || r.ImportID != importID {
		return Receipt{}, false, fmt.Errorf("%s of import %s is damaged; remove it to start the import afresh", ReceiptFile, importID)
	}
	return r, true, nil
}

// Receipts lists the receipts in reportDir, one per import folder that has
// one.
func Receipts(reportDir string) ([]Receipt, error) {
	entries, err := os.ReadDir(reportDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("error reading %s: %w", reportDir, err)
	}
	var out []Receipt
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if r, ok, err := ReadReceipt(reportDir, e.Name()); err == nil && ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// RemoveReceipt removes an import's receipt from reportDir, if it is there,
// and reports whether it was: an import deleted on purpose is not lost.
func RemoveReceipt(reportDir, importID string) bool {
	return os.Remove(filepath.Join(Dir(reportDir, importID), ReceiptFile)) == nil
}

// ReadFinished reads the summary.json of an import's report in
// reportDir/<import id>/, if the import finished there: what this machine
// knows of an import Redis lost after it finished.
func ReadFinished(reportDir, importID string) (importer.Summary, bool) {
	b, err := os.ReadFile(filepath.Join(Dir(reportDir, importID), SummaryFile))
	if err != nil {
		return importer.Summary{}, false
	}
	var sum importer.Summary
	if json.Unmarshal(b, &sum) != nil || sum.ImportID != importID || sum.FinishedAt.IsZero() {
		return importer.Summary{}, false
	}
	return sum, true
}
