package medcom

// MetaRef is the Letter.Meta key that keeps the MedCom id an answer refers
// to when the hub puts its own letter id into InReplyTo (a note for whoever
// traces the letter; the other keys come from packages oioxml and fhirmsg).
const MetaRef = "medcom_ref"
