package epj

// Letter.Meta keys of the letters this package makes: notes for whoever
// traces a letter, never read by the pipeline (see letter.Letter.Meta).
const (
	MetaFHIRResource = "epj_fhir_resource" // type/id
	MetaFHIRVersion  = "epj_fhir_version"
	// MetaAttachmentsByURL counts attachments given only by URL (a
	// Binary), which are not fetched; the original keeps the links.
	MetaAttachmentsByURL = "epj_attachments_by_url"
)
