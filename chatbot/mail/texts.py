"""The words of the platform's mails, in the conversation's language: en, es, de, fr, it, pt, English for any
other (as chatbot/actions/texts.py does for the bot's words around store actions). What agents and the bot
wrote is quoted as it is."""
from chatbot import wording
from chatbot.wording import LANGUAGES  # noqa: F401 - the languages these texts are written in

TEXTS = {
    "en": {
        "subject": "Your conversation with {store}",
        "from_name": "{agent} from {store}",
        "reply_intro": "{agent} from {store} replied to you:",
        "answer_by_mail": "Reply to this e-mail to answer, or continue the chat on our site:",
        "continue_chat": "Continue the chat on our site:",
        "transcript_subject": "Transcript of your conversation with {store}",
        "transcript_intro": "Here is the transcript of your conversation with {store}, as you asked.",
        "you": "You",
        "assistant": "Assistant",
        "handoff_subject": "{store}: a visitor is waiting for a person",
        "handoff_intro": "A conversation was handed to your team while nobody was online.",
        "reason": "Why: {reason}",
        "last_message": "The visitor wrote: {text}",
        "visitor_email": "The visitor's e-mail address: {email}",
        "open_console": "Open it in the console:",
        "digest_subject": "{store}: conversations waiting for a person ({count})",
        "digest_intro": "These conversations were handed to your team since your last digest and are still waiting:",
    },
    "es": {
        "subject": "Tu conversación con {store}",
        "from_name": "{agent} de {store}",
        "reply_intro": "{agent} de {store} te ha respondido:",
        "answer_by_mail": "Responde a este correo para contestar, o continúa el chat en nuestra web:",
        "continue_chat": "Continúa el chat en nuestra web:",
        "transcript_subject": "Transcripción de tu conversación con {store}",
        "transcript_intro": "Aquí tienes la transcripción de tu conversación con {store}, como pediste.",
        "you": "Tú",
        "assistant": "Asistente",
        "handoff_subject": "{store}: un visitante espera a una persona",
        "handoff_intro": "Se pasó una conversación a tu equipo cuando no había nadie conectado.",
        "reason": "Motivo: {reason}",
        "last_message": "El visitante escribió: {text}",
        "visitor_email": "Correo del visitante: {email}",
        "open_console": "Ábrela en la consola:",
        "digest_subject": "{store}: conversaciones esperando a una persona ({count})",
        "digest_intro": "Estas conversaciones se pasaron a tu equipo desde tu último resumen y siguen esperando:",
    },
    "de": {
        "subject": "Ihr Gespräch mit {store}",
        "from_name": "{agent} von {store}",
        "reply_intro": "{agent} von {store} hat Ihnen geantwortet:",
        "answer_by_mail": "Antworten Sie einfach auf diese E-Mail oder setzen Sie den Chat auf unserer Website fort:",
        "continue_chat": "Setzen Sie den Chat auf unserer Website fort:",
        "transcript_subject": "Verlauf Ihres Gesprächs mit {store}",
        "transcript_intro": "Hier ist, wie gewünscht, der Verlauf Ihres Gesprächs mit {store}.",
        "you": "Sie",
        "assistant": "Assistent",
        "handoff_subject": "{store}: Ein Besucher wartet auf eine Person",
        "handoff_intro": "Ein Gespräch wurde an Ihr Team übergeben, während niemand online war.",
        "reason": "Grund: {reason}",
        "last_message": "Der Besucher schrieb: {text}",
        "visitor_email": "E-Mail-Adresse des Besuchers: {email}",
        "open_console": "In der Konsole öffnen:",
        "digest_subject": "{store}: Gespräche warten auf eine Person ({count})",
        "digest_intro": "Diese Gespräche wurden seit Ihrer letzten Übersicht an Ihr Team übergeben und warten noch:",
    },
    "fr": {
        "subject": "Votre conversation avec {store}",
        "from_name": "{agent} de {store}",
        "reply_intro": "{agent} de {store} vous a répondu :",
        "answer_by_mail": "Répondez à cet e-mail pour lui répondre, ou reprenez le chat sur notre site :",
        "continue_chat": "Reprenez le chat sur notre site :",
        "transcript_subject": "Transcription de votre conversation avec {store}",
        "transcript_intro": "Voici, comme demandé, la transcription de votre conversation avec {store}.",
        "you": "Vous",
        "assistant": "Assistant",
        "handoff_subject": "{store} : un visiteur attend une personne",
        "handoff_intro": "Une conversation a été transmise à votre équipe alors que personne n'était en ligne.",
        "reason": "Motif : {reason}",
        "last_message": "Le visiteur a écrit : {text}",
        "visitor_email": "Adresse e-mail du visiteur : {email}",
        "open_console": "L'ouvrir dans la console :",
        "digest_subject": "{store} : conversations en attente d'une personne ({count})",
        "digest_intro": "Ces conversations ont été transmises à votre équipe depuis votre dernier récapitulatif "
                        "et attendent encore :",
    },
    "it": {
        "subject": "La tua conversazione con {store}",
        "from_name": "{agent} di {store}",
        "reply_intro": "{agent} di {store} ti ha risposto:",
        "answer_by_mail": "Rispondi a questa e-mail per replicare, oppure continua la chat sul nostro sito:",
        "continue_chat": "Continua la chat sul nostro sito:",
        "transcript_subject": "Trascrizione della tua conversazione con {store}",
        "transcript_intro": "Ecco la trascrizione della tua conversazione con {store}, come richiesto.",
        "you": "Tu",
        "assistant": "Assistente",
        "handoff_subject": "{store}: un visitatore aspetta una persona",
        "handoff_intro": "Una conversazione è stata passata al tuo team mentre nessuno era online.",
        "reason": "Motivo: {reason}",
        "last_message": "Il visitatore ha scritto: {text}",
        "visitor_email": "Indirizzo e-mail del visitatore: {email}",
        "open_console": "Aprila nella console:",
        "digest_subject": "{store}: conversazioni in attesa di una persona ({count})",
        "digest_intro": "Queste conversazioni sono state passate al tuo team dal tuo ultimo riepilogo e sono "
                        "ancora in attesa:",
    },
    "pt": {
        "subject": "A sua conversa com {store}",
        "from_name": "{agent}, {store}",
        "reply_intro": "{agent}, da equipa {store}, respondeu-lhe:",
        "answer_by_mail": "Responda a este e-mail para continuar, ou retome o chat no nosso site:",
        "continue_chat": "Retome o chat no nosso site:",
        "transcript_subject": "Transcrição da sua conversa com {store}",
        "transcript_intro": "Aqui está a transcrição da sua conversa com {store}, como pediu.",
        "you": "Você",
        "assistant": "Assistente",
        "handoff_subject": "{store}: um visitante aguarda uma pessoa",
        "handoff_intro": "Uma conversa foi passada para a sua equipa quando ninguém estava online.",
        "reason": "Motivo: {reason}",
        "last_message": "O visitante escreveu: {text}",
        "visitor_email": "E-mail do visitante: {email}",
        "open_console": "Abra-a na consola:",
        "digest_subject": "{store}: conversas à espera de uma pessoa ({count})",
        "digest_intro": "Estas conversas foram passadas para a sua equipa desde o seu último resumo e continuam "
                        "à espera:",
    },
}


def language_of(*candidates: str) -> str:
    """The first of `candidates` (a conversation's language, then the store's main one) the mails are written
    in, else English."""
    return wording.written_in(*candidates)


def text(language: str, name: str, **values) -> str:
    """The text `name` in `language` (English when the platform has none in it), with `values` filled in."""
    return wording.words(TEXTS, language).get(name, TEXTS["en"][name]).format(**values)
