package oioxml

// Value lists copied from MedCom's ValueLists.xsd and GeneralTypes.xsd
// (2006/07/01). "patologi " carries a trailing space in the XSD; values are
// compared trimmed, so it appears here without it.
var medicalSpecialityCodes = []string{
	"ikkeklassificeret", "intern_medicin_sygehus", "geriatri", "hepatologi", "haematologi", "infektionsmedicin",
	"kardiologi", "med_allergologi", "med_endokrinologi", "med_gastroenterologi", "med_lungesygdomme", "nefrologi",
	"reumatologi", "dermato_venerologi_sygehus", "neurologi", "onkologi", "kirurgi_sygehus", "karkirurgi",
	"kir_gastroenterologi", "plastikkirurgi", "thoraxkirurgi", "urologi", "gynaekologi_obstetrik_sygehus",
	"neurokirurgi", "ortopaedisk_kirurgi_sygehus", "oftalmologi", "oto_rhino_laryngologi", "hospitalsodontologi",
	"psykiatri_sygehus", "boerne_ungdomspsykiatri", "klin_biokemi", "klin_fys_nuklearmedicin", "klin_immunologi",
	"klin_mikrobiologi", "klin_neurofysiologi", "patologisk_anatomi", "diagnostisk_radiologi", "klin_farmakologi",
	"klin_genetik", "anaestesiologi_sygehus", "arbejdsmedicin", "almen_medicin", "samfundsmedicin",
	"almenlaege_laegevagt", "oejenlaege", "oere_naese_halslaege", "anaestesiologi_praksis", "roentgen_kbh",
	"dermato_venerologi_praksis", "roentgen", "reumatologi_fysiurgi", "gynaekologi_obstetrik_praksis",
	"intern_medicin_praksis", "kirurgi_praksis", "klinisk_kemi", "neuromedicin", "ortopaedisk_kirurgi_praksis",
	"patologi", "plastkirurgi", "psykiatri_praksis", "paediatri", "boernepsykiatri", "tropemedicin", "tandlaege",
	"fysioterapi", "kiropraktor", "briller", "fodterapi", "fodbehandlking", "med_laboratorier", "omegnslaboratorier",
	"psykolog",
}

var objectExtensionCodes = []string{
	"pcx", "tiff", "jpeg", "gif", "bmp", "png", "mpg", "dcm", "scp", "txt", "rtf", "doc", "xls", "wpd", "exe",
	"pdf", "wav", "avi", "mid", "rmi", "com", "zip", "bin", "inh",
}

// extensionMIME maps the ObjectExtensionCodes with a clear media type.
var extensionMIME = map[string]string{
	"pdf": "application/pdf", "jpeg": "image/jpeg", "gif": "image/gif", "png": "image/png", "tiff": "image/tiff",
	"bmp": "image/bmp", "txt": "text/plain", "rtf": "application/rtf", "doc": "application/msword",
	"xls": "application/vnd.ms-excel", "zip": "application/zip", "dcm": "application/dicom",
}
