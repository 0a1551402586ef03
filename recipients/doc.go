// Package recipients reads recipient files as streams: CSV with a header
// (any one-character delimiter, BOM, CRLF, quoted newlines), JSON arrays
// and NDJSON, sniffed from the first byte when the spec names no format.
// Records and fields are capped in size and refused one by one; a file
// that cannot be read to the end is refused before anything is sent
// (Prescan). It also normalises addresses (E.164 phone numbers, e-mail),
// checks a spec's columns against a header, confines paths under a root
// and escapes cells for the rejects report.
//
//	src, err := recipients.OpenSource(spec.RecipientsPath(), recipients.OptionsOf(spec))
//	defer src.Close()
//	field, err := recipients.AddressField(spec, src.Columns())
//	for {
//		row, err := src.Next() // row.Err refuses one row; io.EOF ends
//		...
//	}
package recipients
