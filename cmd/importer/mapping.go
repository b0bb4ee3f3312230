package main

import (
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/schedule"
	"github.com/propexo-importer/importer/internal/source"
)

func newMappingCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mapping",
		Short: "Work with column mapping files (--mapping, a schedule's mapping:)",
		Args:  cobra.NoArgs,
	}
	var format, delimiter string
	suggest := &cobra.Command{
		Use:   "suggest FILE",
		Short: "Print a starting column mapping for a file's columns",
		Long: `suggest reads FILE's columns and prints a column mapping (YAML) to start
from: each column the built-in aliases map, with its field, and each they
leave unmapped, commented out. Edit it (a field for each unmapped column,
full_name to split a whole name, ignore:, constants:, values:, dates:,
match_key:, strict:) and use it with 'importer run --mapping FILE' or a
schedule's mapping:.`,
		Example: `  importer mapping suggest roster.csv > roster-mapping.yaml`,
		Args:    exactlyOne("mapping suggest", "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			opts, err := importer.Options{Delimiter: delimiter}.Normalize()
			if err != nil {
				return optionError(err)
			}
			f, err := source.OpenFile(path, format, 0, source.Options{Delimiter: opts.DelimiterRune()})
			if err != nil {
				return usageError("%v", err)
			}
			defer f.Close()
			for {
				_, err := f.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return usageError("%s: %v", path, err)
				}
			}
			_, err = stdout.Write(schedule.SuggestMapping(path, f.Columns()))
			return err
		},
	}
	suggest.Flags().StringVar(&format, "format", "", "input format: csv, json, ndjson or xlsx (default: from the file's extension)")
	suggest.Flags().StringVar(&delimiter, "delimiter", ",", "the character between a CSV file's fields")
	cmd.AddCommand(suggest)
	return cmd
}
