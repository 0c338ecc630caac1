"""Task queue names. The workflow queue is part of the external contract; each external
provider has its own activity queue so it can be scaled and rate-limited on its own."""

WORKFLOW = "arrears"
SMS = "arrears-sms"
EMAIL = "arrears-email"
VOICE = "arrears-voice"
LETTERS = "arrears-letters"
TELEMATICS = "arrears-telematics"
PLACEMENT = "arrears-placement"
LEDGER = "arrears-ledger"

ACTIVITY_QUEUES = (SMS, EMAIL, VOICE, LETTERS, TELEMATICS, PLACEMENT, LEDGER)
