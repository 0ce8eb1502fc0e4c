"""British to American spelling of medical words ("haematuria" -> "hematuria",
"oedema" -> "edema"), so that a mention written one way finds the names of a
vocabulary written the other (MeSH, and so CTD and MEDIC, spell the American way).
The linker searches the variant beside the mention as written and keeps each concept's
better score, so a vocabulary with British names loses nothing."""
import re
from typing import Tuple

#: (pattern, replacement), applied in order, case-insensitively, inside words
RULES: Tuple[Tuple["re.Pattern[str]", str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"haem", "hem"),  # haematuria, haemorrhage, haemolytic
        (r"(?<=[a-z])aemi", "emi"),  # anaemia, ischaemic, leukaemia, septicaemia
        (r"\boedem", "edem"),  # oedema
        (r"\boesophag", "esophag"),  # oesophagitis
        (r"\boestr", "estr"),  # oestrogen
        (r"\bfoet", "fet"),  # foetal
        (r"\bcoeliac", "celiac"),
        (r"paed", "ped"),  # paediatric, orthopaedic
        (r"\baetiol", "etiol"),  # aetiology
        (r"\bgynaec", "gynec"),  # gynaecological
        (r"anaesth", "anesth"),  # anaesthesia
        (r"(?<=[a-z])rrhoea", "rrhea"),  # diarrhoea, amenorrhoea, gonorrhoea
        (r"(?<=[a-z])noea", "nea"),  # dyspnoea, apnoea
        (r"\bleuc(?=o|a|yt)", "leuk"),  # leucocyte, leucopenia, leucaemia
        (r"\b(tum|behavi|hum|col)our", r"\1or"),  # tumour, behaviour, humour, colour
    )
)


def american_spelling(text: str) -> str:
    """``text`` with the British spellings of :data:`RULES` made American (the same
    string when there are none)."""
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text
