package oioxml

// Letter.Meta keys of the letters this package makes: notes for the MedCom
// adapter (the builder reads some back when it answers) and for whoever
// traces a letter, never read by the pipeline (see letter.Letter.Meta).
const (
	MetaEnvelopeID      = "medcom_envelope_id"
	MetaLetterID        = "medcom_letter_id"
	MetaLetterIndex     = "medcom_letter_index"
	MetaSenderEAN       = "medcom_sender_ean"
	MetaReceiverEAN     = "medcom_receiver_ean"
	MetaSenderID        = "medcom_sender_id" // identifier code:identifier
	MetaReceiverID      = "medcom_receiver_id"
	MetaVersion         = "medcom_version"
	MetaStatus          = "medcom_status"
	MetaAckCode         = "medcom_ack_code" // the envelope's AcknowledgementCode
	MetaEpisodeOfCareID = "medcom_episode_of_care_id"
	MetaCPRUnknown      = "medcom_cpr_unknown"
	// MetaBINPrefix and MetaSUPPrefix are followed by the reference's
	// number from 1: medcom_bin_1 is the BIN object's identifier,
	// medcom_sup_2 marks a supplementary reference.
	MetaBINPrefix = "medcom_bin_"
	MetaSUPPrefix = "medcom_sup_"
	// MetaObjectPrefix, followed by the object's number from 1, is the
	// identifier of an XBIN01 letter's object (attachment of that number).
	MetaObjectPrefix = "medcom_object_"
	// Receipts.
	MetaReceipt            = "medcom_receipt"
	MetaReceiptResult      = "medcom_receipt_result"
	MetaReceiptID          = "medcom_receipt_id"
	MetaOriginalEnvelopeID = "medcom_original_envelope_id"
	MetaOriginalLetterID   = "medcom_original_letter_id"
	MetaOriginalVersion    = "medcom_original_version" // VersionXBIN01: the receipt of files
	MetaRefuseCode         = "medcom_refuse_code"
)
