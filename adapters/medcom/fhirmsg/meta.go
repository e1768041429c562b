package fhirmsg

// Letter.Meta keys of the letters this package makes: notes for the MedCom
// adapter and for whoever traces a letter, never read by the pipeline (see
// letter.Letter.Meta).
const (
	MetaBundleID               = "medcom_bundle_id"
	MetaEncoding               = "medcom_encoding" // xml or json
	MetaEvent                  = "medcom_event"    // the MessageHeader event code
	MetaPatientNameAbsent      = "medcom_patient_name_absent"
	MetaActivity               = "medcom_activity"
	MetaAttachmentsWithoutData = "medcom_attachments_without_data"
	MetaVANSEnvelopeID         = "medcom_vans_envelope_id"
	MetaResponseCode           = "medcom_response_code"
	MetaIssues                 = "medcom_issues"
	// MetaEpisodeOfCareID is the key XDIS91 letters use too
	// (oioxml.MetaEpisodeOfCareID), so an answer in either format finds it.
	MetaEpisodeOfCareID = "medcom_episode_of_care_id"
)
