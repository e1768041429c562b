// Package fhirmsg reads, checks and writes MedCom's FHIR messages:
// CareCommunication 5.x (event care-communication-message) and
// Acknowledgement (event acknowledgement-message), in FHIR XML or JSON, bare
// or wrapped in a VANSEnvelope.
//
// Why hand-written structures and no FHIR model library: no Go module with
// generated R4 types is in the module cache, and the generated ones
// (e.g. samply/golang-fhir-models) are JSON-only, so the XML half would still
// be hand-written. MedCom uses a small, fixed part of six resources, so both
// encodings are read into one neutral element tree (tree.go) and the few
// fields MedCom defines are taken from it with their FHIR element paths;
// writing goes the other way (write.go).
//
// Letter kinds (decided from domain/medcom.md §2.6, §5.2 and the council's
// flows in domain/interfaces.md §5.2):
//
//	acknowledgement-message                     → letter.KindAcknowledgement
//	reply-message                               → letter.KindReply
//	forward-message                             → letter.KindNote (someone's earlier letter passed on)
//	new-message, category regarding-referral    → letter.KindReferral
//	new-message, category discharge             → letter.KindDischargeNote
//	new-message, any other category             → letter.KindNote
//
// A GP's referral to the council may arrive under any category (MedCom has
// no "referral" category; regarding-referral means "about a referral"), so
// routing rules should not rely on KindReferral alone.
//
// The patient (MedCom core / DK-core Patient): the CPR number when there is
// one, and a replacement CPR (X-eCPR, regional D-eCPR, MedCom core 2.x's
// E-CPR) with its system, also when both are given. Names are taken as far
// as they are known: a family name given as absent (data-absent-reason) stays
// empty, and the reason is kept in Letter.Meta[MetaPatientNameAbsent]; the
// builder writes an empty family name the same way. No name is ever made up.
package fhirmsg
