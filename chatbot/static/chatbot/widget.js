/*
 * Northwind chat widget: the one file a store embeds.
 *
 *   <script src="https://HOST/static/chatbot/widget.js" data-key="KEY" async></script>
 *
 * Plain JavaScript (ASCII only, so any page encoding reads it), no dependencies, no build step. It talks to HOST (taken from this
 * script's own src, never from the page) over the widget websocket protocol described
 * in docs/widget-protocol.md. Optional attributes: data-title (panel heading), data-color
 * (accent, #rgb or #rrggbb), data-server (base URL when the file is served elsewhere), data-lang (the
 * language of the widget's own words, else the page's <html lang>, else the browser's), and for a
 * signed-in customer data-user-id (the store's id for her) with data-user-hash (hex HMAC-SHA256 of
 * that id under the store's identity secret, computed by the store's server), so that she finds
 * her conversations on any device.
 * Everything lives in an open shadow root, so the store's CSS cannot reach it.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector('script[src*="widget.js"][data-key]');
  if (!script || !script.getAttribute("data-key")) {
    if (window.console) console.error("[chat widget] Missing data-key on the widget <script> tag.");
    return;
  }
  if (document.querySelector("nwcb-widget")) return; // embedded twice: the first one wins

  // --- words: everything the widget itself writes, in the language of the page ---
  // One table, one entry per language, every entry with the keys of "en"; letters outside ASCII are
  // \u escapes (this file stays ASCII). Strict JSON between the two marker lines:
  // tests/chatbot/test_widget_strings.py reads it and fails on a missing key or an empty text.
  // Messages written by the store, the bot or agents (greeting, answers) are shown as they come.
  // STRINGS-BEGIN
  var STRINGS = {
    "en": {
      "title": "Chat with us",
      "open": "Open chat",
      "openUnreadOne": "Open chat, 1 new message",
      "openUnreadMany": "Open chat, {count} new messages",
      "close": "Close chat",
      "conversation": "Conversation",
      "hint": "Ask us anything: orders, shipping, returns or products.",
      "messageLabel": "Your message",
      "placeholder": "Type your message\u2026",
      "placeholderUnavailable": "Chat unavailable",
      "send": "Send message",
      "whoVisitor": "You",
      "whoBot": "Assistant",
      "whoAgent": "Agent",
      "whoSystem": "Notice",
      "helpfulQuestion": "Was this answer helpful?",
      "helpful": "Helpful",
      "notHelpful": "Not helpful",
      "choices": "Quick replies",
      "sending": "Sending\u2026",
      "waitingConnection": "Waiting for connection\u2026",
      "waitingSend": "Waiting to send\u2026",
      "notSent": "Not sent",
      "notSentReason": "Not sent: {reason}",
      "reasonUndelivered": "the chat couldn't deliver it",
      "reasonUnavailable": "chat unavailable",
      "reasonTooLong": "too long",
      "reasonEmpty": "empty",
      "reasonInvalidText": "the text can't be sent",
      "reasonInvalidId": "it can't be sent",
      "reasonClosed": "this conversation is closed",
      "statusIdle": "We usually reply in seconds",
      "statusConnecting": "Connecting\u2026",
      "statusOnline": "Online",
      "statusOffline": "Offline, reconnecting\u2026",
      "statusUnavailable": "Unavailable",
      "statusWaiting": "Waiting for a person\u2026",
      "statusAway": "Our team is away",
      "statusChatting": "Chatting with {name}",
      "statusChattingTeam": "Chatting with our team",
      "statusResolved": "Conversation resolved",
      "noticeOffline": "You're offline. Messages you write will be sent when the connection is back.",
      "noticeReconnecting": "Connection lost, reconnecting\u2026 Messages you write will be sent when it's back.",
      "noticeUnavailable": "Sorry, the chat isn't available on this site right now.",
      "typingBot": "The assistant is typing\u2026",
      "typingAgent": "{name} is typing\u2026",
      "typingAgentUnnamed": "An agent is typing\u2026",
      "errorRateLimited": "You're sending messages a little fast. We'll send yours in a moment.",
      "errorUnavailable": "The chat is having trouble right now. We'll send your message as soon as it's back.",
      "errorFatal": "The chat is unavailable on this site right now.",
      "errorTooLong": "That message is too long. Please shorten it and try again.",
      "errorTooLongMax": "That message is too long. Please keep it under {max} characters.",
      "errorEmpty": "Please type a message first.",
      "errorRateOffline": "You're offline; please rate again once the chat reconnects.",
      "errorCantRate": "This conversation can't be rated right now.",
      "errorRating": "Sorry, we couldn't record that rating.",
      "errorDetail": "Sorry: {detail}",
      "errorGeneric": "Sorry, something went wrong. Please try again.",
      "contactTitle": "Our team is away right now",
      "contactText": "Leave your e-mail and we'll get back to you.",
      "contactTitleClosed": "We're closed right now",
      "contactTextClosed": "We're back: {when}. Leave your e-mail and we'll get back to you.",
      "statusClosed": "Back: {when}",
      "contactLabel": "Your e-mail address",
      "contactPlaceholder": "you@example.com",
      "contactSend": "Send",
      "contactEmpty": "Please type your e-mail address.",
      "contactInvalid": "That doesn't look like an e-mail address. Please check it and try again.",
      "contactOffline": "You're offline; please try again once the chat reconnects.",
      "contactThanks": "Thanks!",
      "contactDone": "We'll get back to you at {email}.",
      "contactTranscript": "Also e-mail me a copy of this chat",
      "csatTitle": "How did we do?",
      "csatText": "Please rate this conversation.",
      "csat1": "Very poor",
      "csat2": "Poor",
      "csat3": "Okay",
      "csat4": "Good",
      "csat5": "Excellent",
      "csatStar": "{label} ({n} of 5)",
      "csatThanks": "Thanks for your feedback!",
      "csatDone": "You rated this conversation {n} of 5."
    },
    "es": {
      "title": "Chatea con nosotros",
      "open": "Abrir chat",
      "openUnreadOne": "Abrir chat, 1 mensaje nuevo",
      "openUnreadMany": "Abrir chat, {count} mensajes nuevos",
      "close": "Cerrar chat",
      "conversation": "Conversaci\u00f3n",
      "hint": "Preg\u00fantanos lo que quieras: pedidos, env\u00edos, devoluciones o productos.",
      "messageLabel": "Tu mensaje",
      "placeholder": "Escribe tu mensaje\u2026",
      "placeholderUnavailable": "Chat no disponible",
      "send": "Enviar mensaje",
      "whoVisitor": "T\u00fa",
      "whoBot": "Asistente",
      "whoAgent": "Agente",
      "whoSystem": "Aviso",
      "helpfulQuestion": "\u00bfTe ha sido \u00fatil esta respuesta?",
      "helpful": "\u00datil",
      "notHelpful": "No es \u00fatil",
      "choices": "Respuestas r\u00e1pidas",
      "sending": "Enviando\u2026",
      "waitingConnection": "Esperando conexi\u00f3n\u2026",
      "waitingSend": "Pendiente de env\u00edo\u2026",
      "notSent": "No enviado",
      "notSentReason": "No enviado: {reason}",
      "reasonUndelivered": "el chat no pudo entregarlo",
      "reasonUnavailable": "chat no disponible",
      "reasonTooLong": "demasiado largo",
      "reasonEmpty": "vac\u00edo",
      "reasonInvalidText": "el texto no se puede enviar",
      "reasonInvalidId": "no se puede enviar",
      "reasonClosed": "esta conversaci\u00f3n est\u00e1 cerrada",
      "statusIdle": "Solemos responder en segundos",
      "statusConnecting": "Conectando\u2026",
      "statusOnline": "En l\u00ednea",
      "statusOffline": "Sin conexi\u00f3n, reconectando\u2026",
      "statusUnavailable": "No disponible",
      "statusWaiting": "Esperando a una persona\u2026",
      "statusAway": "Nuestro equipo no est\u00e1 disponible",
      "statusChatting": "Chateando con {name}",
      "statusChattingTeam": "Chateando con nuestro equipo",
      "statusResolved": "Conversaci\u00f3n resuelta",
      "noticeOffline": "Est\u00e1s sin conexi\u00f3n. Los mensajes que escribas se enviar\u00e1n cuando vuelva la conexi\u00f3n.",
      "noticeReconnecting": "Se perdi\u00f3 la conexi\u00f3n, reconectando\u2026 Los mensajes que escribas se enviar\u00e1n cuando vuelva.",
      "noticeUnavailable": "Lo sentimos, el chat no est\u00e1 disponible en este sitio ahora mismo.",
      "typingBot": "El asistente est\u00e1 escribiendo\u2026",
      "typingAgent": "{name} est\u00e1 escribiendo\u2026",
      "typingAgentUnnamed": "Un agente est\u00e1 escribiendo\u2026",
      "errorRateLimited": "Est\u00e1s enviando mensajes un poco r\u00e1pido. Enviaremos el tuyo en un momento.",
      "errorUnavailable": "El chat tiene problemas ahora mismo. Enviaremos tu mensaje en cuanto vuelva a funcionar.",
      "errorFatal": "El chat no est\u00e1 disponible en este sitio ahora mismo.",
      "errorTooLong": "Ese mensaje es demasiado largo. Ac\u00f3rtalo y vuelve a intentarlo.",
      "errorTooLongMax": "Ese mensaje es demasiado largo. Escribe menos de {max} caracteres.",
      "errorEmpty": "Escribe primero un mensaje.",
      "errorRateOffline": "Est\u00e1s sin conexi\u00f3n; vuelve a valorar cuando el chat se reconecte.",
      "errorCantRate": "Esta conversaci\u00f3n no se puede valorar ahora.",
      "errorRating": "Lo sentimos, no pudimos guardar tu valoraci\u00f3n.",
      "errorDetail": "Lo sentimos: {detail}",
      "errorGeneric": "Lo sentimos, algo sali\u00f3 mal. Vuelve a intentarlo.",
      "contactTitle": "Nuestro equipo no est\u00e1 disponible ahora",
      "contactText": "D\u00e9janos tu correo y te responderemos.",
      "contactTitleClosed": "Ahora estamos cerrados",
      "contactTextClosed": "Volvemos: {when}. D\u00e9janos tu correo y te responderemos.",
      "statusClosed": "De vuelta: {when}",
      "contactLabel": "Tu correo electr\u00f3nico",
      "contactPlaceholder": "tu@ejemplo.com",
      "contactSend": "Enviar",
      "contactEmpty": "Escribe tu correo electr\u00f3nico.",
      "contactInvalid": "Esa direcci\u00f3n de correo no parece v\u00e1lida. Rev\u00edsala y vuelve a intentarlo.",
      "contactOffline": "Est\u00e1s sin conexi\u00f3n; vuelve a intentarlo cuando el chat se reconecte.",
      "contactThanks": "\u00a1Gracias!",
      "contactDone": "Te responderemos en {email}.",
      "contactTranscript": "Env\u00edame tambi\u00e9n una copia de este chat por correo",
      "csatTitle": "\u00bfQu\u00e9 tal te atendimos?",
      "csatText": "Valora esta conversaci\u00f3n, por favor.",
      "csat1": "Muy mala",
      "csat2": "Mala",
      "csat3": "Regular",
      "csat4": "Buena",
      "csat5": "Excelente",
      "csatStar": "{label} ({n} de 5)",
      "csatThanks": "\u00a1Gracias por tu opini\u00f3n!",
      "csatDone": "Valoraste esta conversaci\u00f3n con {n} de 5."
    },
    "de": {
      "title": "Chatten Sie mit uns",
      "open": "Chat \u00f6ffnen",
      "openUnreadOne": "Chat \u00f6ffnen, 1 neue Nachricht",
      "openUnreadMany": "Chat \u00f6ffnen, {count} neue Nachrichten",
      "close": "Chat schlie\u00dfen",
      "conversation": "Unterhaltung",
      "hint": "Fragen Sie uns alles zu Bestellungen, Versand, R\u00fccksendungen oder Produkten.",
      "messageLabel": "Ihre Nachricht",
      "placeholder": "Nachricht eingeben\u2026",
      "placeholderUnavailable": "Chat nicht verf\u00fcgbar",
      "send": "Nachricht senden",
      "whoVisitor": "Sie",
      "whoBot": "Assistent",
      "whoAgent": "Kundenservice",
      "whoSystem": "Hinweis",
      "helpfulQuestion": "War diese Antwort hilfreich?",
      "helpful": "Hilfreich",
      "notHelpful": "Nicht hilfreich",
      "choices": "Schnellantworten",
      "sending": "Wird gesendet\u2026",
      "waitingConnection": "Warte auf Verbindung\u2026",
      "waitingSend": "Wird gleich gesendet\u2026",
      "notSent": "Nicht gesendet",
      "notSentReason": "Nicht gesendet: {reason}",
      "reasonUndelivered": "der Chat konnte sie nicht zustellen",
      "reasonUnavailable": "Chat nicht verf\u00fcgbar",
      "reasonTooLong": "zu lang",
      "reasonEmpty": "leer",
      "reasonInvalidText": "der Text kann nicht gesendet werden",
      "reasonInvalidId": "sie kann nicht gesendet werden",
      "reasonClosed": "diese Unterhaltung ist beendet",
      "statusIdle": "Wir antworten meist in Sekunden",
      "statusConnecting": "Verbindung wird aufgebaut\u2026",
      "statusOnline": "Online",
      "statusOffline": "Offline, verbinde erneut\u2026",
      "statusUnavailable": "Nicht verf\u00fcgbar",
      "statusWaiting": "Warten auf eine Person\u2026",
      "statusAway": "Unser Team ist nicht erreichbar",
      "statusChatting": "Im Chat mit {name}",
      "statusChattingTeam": "Im Chat mit unserem Team",
      "statusResolved": "Unterhaltung abgeschlossen",
      "noticeOffline": "Sie sind offline. Ihre Nachrichten werden gesendet, sobald die Verbindung wieder steht.",
      "noticeReconnecting": "Verbindung verloren, verbinde erneut\u2026 Ihre Nachrichten werden gesendet, sobald sie wieder steht.",
      "noticeUnavailable": "Der Chat ist auf dieser Website leider gerade nicht verf\u00fcgbar.",
      "typingBot": "Der Assistent schreibt\u2026",
      "typingAgent": "{name} schreibt\u2026",
      "typingAgentUnnamed": "Jemand aus dem Team schreibt\u2026",
      "errorRateLimited": "Sie schreiben etwas schnell. Wir senden Ihre Nachricht gleich.",
      "errorUnavailable": "Der Chat hat gerade Probleme. Wir senden Ihre Nachricht, sobald er wieder l\u00e4uft.",
      "errorFatal": "Der Chat ist auf dieser Website gerade nicht verf\u00fcgbar.",
      "errorTooLong": "Diese Nachricht ist zu lang. Bitte k\u00fcrzen Sie sie und versuchen Sie es erneut.",
      "errorTooLongMax": "Diese Nachricht ist zu lang. Bitte bleiben Sie unter {max} Zeichen.",
      "errorEmpty": "Bitte geben Sie zuerst eine Nachricht ein.",
      "errorRateOffline": "Sie sind offline. Bitte bewerten Sie erneut, sobald der Chat wieder verbunden ist.",
      "errorCantRate": "Diese Unterhaltung kann gerade nicht bewertet werden.",
      "errorRating": "Ihre Bewertung konnte leider nicht gespeichert werden.",
      "errorDetail": "Entschuldigung: {detail}",
      "errorGeneric": "Da ist leider etwas schiefgelaufen. Bitte versuchen Sie es erneut.",
      "contactTitle": "Unser Team ist gerade nicht erreichbar",
      "contactText": "Hinterlassen Sie Ihre E-Mail-Adresse, dann melden wir uns bei Ihnen.",
      "contactTitleClosed": "Wir haben gerade geschlossen",
      "contactTextClosed": "Wir sind wieder da: {when}. Hinterlassen Sie Ihre E-Mail-Adresse, dann melden wir uns bei Ihnen.",
      "statusClosed": "Wieder da: {when}",
      "contactLabel": "Ihre E-Mail-Adresse",
      "contactPlaceholder": "name@beispiel.de",
      "contactSend": "Senden",
      "contactEmpty": "Bitte geben Sie Ihre E-Mail-Adresse ein.",
      "contactInvalid": "Das sieht nicht nach einer E-Mail-Adresse aus. Bitte pr\u00fcfen Sie sie und versuchen Sie es erneut.",
      "contactOffline": "Sie sind offline. Bitte versuchen Sie es erneut, sobald der Chat wieder verbunden ist.",
      "contactThanks": "Danke!",
      "contactDone": "Wir melden uns unter {email} bei Ihnen.",
      "contactTranscript": "Schicken Sie mir auch eine Kopie dieses Chats per E-Mail",
      "csatTitle": "Wie zufrieden waren Sie?",
      "csatText": "Bitte bewerten Sie diese Unterhaltung.",
      "csat1": "Sehr schlecht",
      "csat2": "Schlecht",
      "csat3": "Okay",
      "csat4": "Gut",
      "csat5": "Ausgezeichnet",
      "csatStar": "{label} ({n} von 5)",
      "csatThanks": "Danke f\u00fcr Ihr Feedback!",
      "csatDone": "Sie haben diese Unterhaltung mit {n} von 5 bewertet."
    },
    "fr": {
      "title": "Discutez avec nous",
      "open": "Ouvrir le chat",
      "openUnreadOne": "Ouvrir le chat, 1 nouveau message",
      "openUnreadMany": "Ouvrir le chat, {count} nouveaux messages",
      "close": "Fermer le chat",
      "conversation": "Conversation",
      "hint": "Posez-nous vos questions\u00a0: commandes, livraison, retours ou produits.",
      "messageLabel": "Votre message",
      "placeholder": "\u00c9crivez votre message\u2026",
      "placeholderUnavailable": "Chat indisponible",
      "send": "Envoyer le message",
      "whoVisitor": "Vous",
      "whoBot": "Assistant",
      "whoAgent": "Conseiller",
      "whoSystem": "Information",
      "helpfulQuestion": "Cette r\u00e9ponse \u00e9tait-elle utile\u00a0?",
      "helpful": "Utile",
      "notHelpful": "Pas utile",
      "choices": "R\u00e9ponses rapides",
      "sending": "Envoi en cours\u2026",
      "waitingConnection": "En attente de connexion\u2026",
      "waitingSend": "En attente d'envoi\u2026",
      "notSent": "Non envoy\u00e9",
      "notSentReason": "Non envoy\u00e9\u00a0: {reason}",
      "reasonUndelivered": "le chat n'a pas pu le transmettre",
      "reasonUnavailable": "chat indisponible",
      "reasonTooLong": "trop long",
      "reasonEmpty": "vide",
      "reasonInvalidText": "ce texte ne peut pas \u00eatre envoy\u00e9",
      "reasonInvalidId": "il ne peut pas \u00eatre envoy\u00e9",
      "reasonClosed": "cette conversation est termin\u00e9e",
      "statusIdle": "Nous r\u00e9pondons en g\u00e9n\u00e9ral en quelques secondes",
      "statusConnecting": "Connexion\u2026",
      "statusOnline": "En ligne",
      "statusOffline": "Hors ligne, reconnexion\u2026",
      "statusUnavailable": "Indisponible",
      "statusWaiting": "En attente d'un conseiller\u2026",
      "statusAway": "Notre \u00e9quipe est absente",
      "statusChatting": "Conversation avec {name}",
      "statusChattingTeam": "Conversation avec notre \u00e9quipe",
      "statusResolved": "Conversation r\u00e9solue",
      "noticeOffline": "Vous \u00eates hors ligne. Vos messages seront envoy\u00e9s d\u00e8s le retour de la connexion.",
      "noticeReconnecting": "Connexion perdue, reconnexion\u2026 Vos messages seront envoy\u00e9s d\u00e8s son retour.",
      "noticeUnavailable": "D\u00e9sol\u00e9s, le chat n'est pas disponible sur ce site pour le moment.",
      "typingBot": "L'assistant \u00e9crit\u2026",
      "typingAgent": "{name} \u00e9crit\u2026",
      "typingAgentUnnamed": "Un conseiller \u00e9crit\u2026",
      "errorRateLimited": "Vous envoyez vos messages un peu vite. Nous enverrons le v\u00f4tre dans un instant.",
      "errorUnavailable": "Le chat rencontre un probl\u00e8me. Nous enverrons votre message d\u00e8s qu'il sera r\u00e9tabli.",
      "errorFatal": "Le chat n'est pas disponible sur ce site pour le moment.",
      "errorTooLong": "Ce message est trop long. Raccourcissez-le et r\u00e9essayez.",
      "errorTooLongMax": "Ce message est trop long. Ne d\u00e9passez pas {max} caract\u00e8res.",
      "errorEmpty": "\u00c9crivez d'abord un message.",
      "errorRateOffline": "Vous \u00eates hors ligne\u00a0; notez \u00e0 nouveau une fois le chat reconnect\u00e9.",
      "errorCantRate": "Cette conversation ne peut pas \u00eatre not\u00e9e pour le moment.",
      "errorRating": "D\u00e9sol\u00e9s, nous n'avons pas pu enregistrer votre note.",
      "errorDetail": "D\u00e9sol\u00e9s\u00a0: {detail}",
      "errorGeneric": "D\u00e9sol\u00e9s, une erreur s'est produite. Veuillez r\u00e9essayer.",
      "contactTitle": "Notre \u00e9quipe est absente pour le moment",
      "contactText": "Laissez-nous votre e-mail et nous vous r\u00e9pondrons.",
      "contactTitleClosed": "Nous sommes ferm\u00e9s pour le moment",
      "contactTextClosed": "Nous serons de retour\u00a0: {when}. Laissez-nous votre e-mail et nous vous r\u00e9pondrons.",
      "statusClosed": "De retour\u00a0: {when}",
      "contactLabel": "Votre adresse e-mail",
      "contactPlaceholder": "vous@exemple.fr",
      "contactSend": "Envoyer",
      "contactEmpty": "Veuillez saisir votre adresse e-mail.",
      "contactInvalid": "Cette adresse e-mail ne semble pas valide. V\u00e9rifiez-la et r\u00e9essayez.",
      "contactOffline": "Vous \u00eates hors ligne\u00a0; r\u00e9essayez une fois le chat reconnect\u00e9.",
      "contactThanks": "Merci\u00a0!",
      "contactDone": "Nous vous r\u00e9pondrons \u00e0 {email}.",
      "contactTranscript": "M'envoyer aussi une copie de ce chat par e-mail",
      "csatTitle": "Comment s'est pass\u00e9 cet \u00e9change\u00a0?",
      "csatText": "Merci de noter cette conversation.",
      "csat1": "Tr\u00e8s mauvais",
      "csat2": "Mauvais",
      "csat3": "Correct",
      "csat4": "Bien",
      "csat5": "Excellent",
      "csatStar": "{label} ({n} sur 5)",
      "csatThanks": "Merci pour votre avis\u00a0!",
      "csatDone": "Vous avez not\u00e9 cette conversation {n} sur 5."
    },
    "it": {
      "title": "Chatta con noi",
      "open": "Apri la chat",
      "openUnreadOne": "Apri la chat, 1 nuovo messaggio",
      "openUnreadMany": "Apri la chat, {count} nuovi messaggi",
      "close": "Chiudi la chat",
      "conversation": "Conversazione",
      "hint": "Chiedici quello che vuoi: ordini, spedizioni, resi o prodotti.",
      "messageLabel": "Il tuo messaggio",
      "placeholder": "Scrivi il tuo messaggio\u2026",
      "placeholderUnavailable": "Chat non disponibile",
      "send": "Invia messaggio",
      "whoVisitor": "Tu",
      "whoBot": "Assistente",
      "whoAgent": "Operatore",
      "whoSystem": "Avviso",
      "helpfulQuestion": "Questa risposta ti \u00e8 stata utile?",
      "helpful": "Utile",
      "notHelpful": "Non utile",
      "choices": "Risposte rapide",
      "sending": "Invio in corso\u2026",
      "waitingConnection": "In attesa di connessione\u2026",
      "waitingSend": "In attesa di invio\u2026",
      "notSent": "Non inviato",
      "notSentReason": "Non inviato: {reason}",
      "reasonUndelivered": "la chat non \u00e8 riuscita a consegnarlo",
      "reasonUnavailable": "chat non disponibile",
      "reasonTooLong": "troppo lungo",
      "reasonEmpty": "vuoto",
      "reasonInvalidText": "il testo non pu\u00f2 essere inviato",
      "reasonInvalidId": "non pu\u00f2 essere inviato",
      "reasonClosed": "questa conversazione \u00e8 chiusa",
      "statusIdle": "Di solito rispondiamo in pochi secondi",
      "statusConnecting": "Connessione\u2026",
      "statusOnline": "Online",
      "statusOffline": "Offline, riconnessione\u2026",
      "statusUnavailable": "Non disponibile",
      "statusWaiting": "In attesa di un operatore\u2026",
      "statusAway": "Il nostro team non \u00e8 disponibile",
      "statusChatting": "In chat con {name}",
      "statusChattingTeam": "In chat con il nostro team",
      "statusResolved": "Conversazione risolta",
      "noticeOffline": "Sei offline. I messaggi che scrivi verranno inviati quando torna la connessione.",
      "noticeReconnecting": "Connessione persa, riconnessione\u2026 I messaggi che scrivi verranno inviati appena torna.",
      "noticeUnavailable": "Spiacenti, al momento la chat non \u00e8 disponibile su questo sito.",
      "typingBot": "L'assistente sta scrivendo\u2026",
      "typingAgent": "{name} sta scrivendo\u2026",
      "typingAgentUnnamed": "Un operatore sta scrivendo\u2026",
      "errorRateLimited": "Stai inviando messaggi un po' troppo in fretta. Invieremo il tuo tra un attimo.",
      "errorUnavailable": "La chat ha qualche problema in questo momento. Invieremo il tuo messaggio appena torna disponibile.",
      "errorFatal": "Al momento la chat non \u00e8 disponibile su questo sito.",
      "errorTooLong": "Il messaggio \u00e8 troppo lungo. Accorcialo e riprova.",
      "errorTooLongMax": "Il messaggio \u00e8 troppo lungo. Resta sotto i {max} caratteri.",
      "errorEmpty": "Scrivi prima un messaggio.",
      "errorRateOffline": "Sei offline; riprova a valutare quando la chat si riconnette.",
      "errorCantRate": "Al momento non \u00e8 possibile valutare questa conversazione.",
      "errorRating": "Spiacenti, non siamo riusciti a registrare la tua valutazione.",
      "errorDetail": "Spiacenti: {detail}",
      "errorGeneric": "Spiacenti, qualcosa \u00e8 andato storto. Riprova.",
      "contactTitle": "Al momento il nostro team non \u00e8 disponibile",
      "contactText": "Lasciaci la tua e-mail e ti ricontatteremo.",
      "contactTitleClosed": "Al momento siamo chiusi",
      "contactTextClosed": "Torniamo: {when}. Lasciaci la tua e-mail e ti ricontatteremo.",
      "statusClosed": "Di nuovo qui: {when}",
      "contactLabel": "Il tuo indirizzo e-mail",
      "contactPlaceholder": "nome@esempio.it",
      "contactSend": "Invia",
      "contactEmpty": "Inserisci il tuo indirizzo e-mail.",
      "contactInvalid": "Questo indirizzo e-mail non sembra valido. Controllalo e riprova.",
      "contactOffline": "Sei offline; riprova quando la chat si riconnette.",
      "contactThanks": "Grazie!",
      "contactDone": "Ti ricontatteremo all'indirizzo {email}.",
      "contactTranscript": "Inviami anche una copia di questa chat via e-mail",
      "csatTitle": "Com'\u00e8 andata?",
      "csatText": "Valuta questa conversazione.",
      "csat1": "Pessimo",
      "csat2": "Scarso",
      "csat3": "Discreto",
      "csat4": "Buono",
      "csat5": "Eccellente",
      "csatStar": "{label} ({n} su 5)",
      "csatThanks": "Grazie per il tuo feedback!",
      "csatDone": "Hai valutato questa conversazione {n} su 5."
    },
    "pt": {
      "title": "Fale conosco",
      "open": "Abrir chat",
      "openUnreadOne": "Abrir chat, 1 nova mensagem",
      "openUnreadMany": "Abrir chat, {count} novas mensagens",
      "close": "Fechar chat",
      "conversation": "Conversa",
      "hint": "Pergunte o que quiser: pedidos, entregas, devolu\u00e7\u00f5es ou produtos.",
      "messageLabel": "Sua mensagem",
      "placeholder": "Digite sua mensagem\u2026",
      "placeholderUnavailable": "Chat indispon\u00edvel",
      "send": "Enviar mensagem",
      "whoVisitor": "Voc\u00ea",
      "whoBot": "Assistente",
      "whoAgent": "Atendente",
      "whoSystem": "Aviso",
      "helpfulQuestion": "Esta resposta foi \u00fatil?",
      "helpful": "\u00datil",
      "notHelpful": "N\u00e3o foi \u00fatil",
      "choices": "Respostas r\u00e1pidas",
      "sending": "Enviando\u2026",
      "waitingConnection": "Aguardando conex\u00e3o\u2026",
      "waitingSend": "Aguardando envio\u2026",
      "notSent": "N\u00e3o enviada",
      "notSentReason": "N\u00e3o enviada: {reason}",
      "reasonUndelivered": "o chat n\u00e3o conseguiu entreg\u00e1-la",
      "reasonUnavailable": "chat indispon\u00edvel",
      "reasonTooLong": "longa demais",
      "reasonEmpty": "vazia",
      "reasonInvalidText": "o texto n\u00e3o pode ser enviado",
      "reasonInvalidId": "n\u00e3o pode ser enviada",
      "reasonClosed": "esta conversa foi encerrada",
      "statusIdle": "Costumamos responder em segundos",
      "statusConnecting": "Conectando\u2026",
      "statusOnline": "Online",
      "statusOffline": "Sem conex\u00e3o, reconectando\u2026",
      "statusUnavailable": "Indispon\u00edvel",
      "statusWaiting": "Aguardando um atendente\u2026",
      "statusAway": "Nossa equipe n\u00e3o est\u00e1 dispon\u00edvel",
      "statusChatting": "Conversando com {name}",
      "statusChattingTeam": "Conversando com nossa equipe",
      "statusResolved": "Conversa resolvida",
      "noticeOffline": "Voc\u00ea est\u00e1 sem conex\u00e3o. As mensagens que escrever ser\u00e3o enviadas quando a conex\u00e3o voltar.",
      "noticeReconnecting": "Conex\u00e3o perdida, reconectando\u2026 As mensagens que escrever ser\u00e3o enviadas quando ela voltar.",
      "noticeUnavailable": "Desculpe, o chat n\u00e3o est\u00e1 dispon\u00edvel neste site no momento.",
      "typingBot": "O assistente est\u00e1 digitando\u2026",
      "typingAgent": "{name} est\u00e1 digitando\u2026",
      "typingAgentUnnamed": "Um atendente est\u00e1 digitando\u2026",
      "errorRateLimited": "Voc\u00ea est\u00e1 enviando mensagens um pouco r\u00e1pido. Vamos enviar a sua em instantes.",
      "errorUnavailable": "O chat est\u00e1 com problemas no momento. Vamos enviar sua mensagem assim que ele voltar.",
      "errorFatal": "O chat n\u00e3o est\u00e1 dispon\u00edvel neste site no momento.",
      "errorTooLong": "Essa mensagem \u00e9 longa demais. Encurte-a e tente novamente.",
      "errorTooLongMax": "Essa mensagem \u00e9 longa demais. Use menos de {max} caracteres.",
      "errorEmpty": "Digite uma mensagem primeiro.",
      "errorRateOffline": "Voc\u00ea est\u00e1 sem conex\u00e3o; avalie novamente quando o chat se reconectar.",
      "errorCantRate": "Esta conversa n\u00e3o pode ser avaliada agora.",
      "errorRating": "Desculpe, n\u00e3o conseguimos registrar sua avalia\u00e7\u00e3o.",
      "errorDetail": "Desculpe: {detail}",
      "errorGeneric": "Desculpe, algo deu errado. Tente novamente.",
      "contactTitle": "Nossa equipe n\u00e3o est\u00e1 dispon\u00edvel agora",
      "contactText": "Deixe seu e-mail e entraremos em contato.",
      "contactTitleClosed": "Estamos fechados agora",
      "contactTextClosed": "Voltamos: {when}. Deixe seu e-mail e entraremos em contato.",
      "statusClosed": "De volta: {when}",
      "contactLabel": "Seu endere\u00e7o de e-mail",
      "contactPlaceholder": "voce@exemplo.com",
      "contactSend": "Enviar",
      "contactEmpty": "Digite seu endere\u00e7o de e-mail.",
      "contactInvalid": "Isso n\u00e3o parece um endere\u00e7o de e-mail. Verifique e tente novamente.",
      "contactOffline": "Voc\u00ea est\u00e1 sem conex\u00e3o; tente novamente quando o chat se reconectar.",
      "contactThanks": "Obrigado!",
      "contactDone": "Entraremos em contato pelo e-mail {email}.",
      "contactTranscript": "Envie-me tamb\u00e9m uma c\u00f3pia desta conversa por e-mail",
      "csatTitle": "Como foi o atendimento?",
      "csatText": "Avalie esta conversa, por favor.",
      "csat1": "Muito ruim",
      "csat2": "Ruim",
      "csat3": "Regular",
      "csat4": "Bom",
      "csat5": "Excelente",
      "csatStar": "{label} ({n} de 5)",
      "csatThanks": "Obrigado pela avalia\u00e7\u00e3o!",
      "csatDone": "Voc\u00ea avaliou esta conversa com {n} de 5."
    }
  };
  // STRINGS-END

  // The widget's language: the first of the tag's data-lang, the page's <html lang>, then the browser's
  // languages whose primary subtag the table has (pt-BR: pt, de-AT: de); English when none has one.
  var LANG = (function () {
    var nav = window.navigator || {};
    var wanted = [script.getAttribute("data-lang"), document.documentElement.getAttribute("lang")]
      .concat(nav.languages ? Array.prototype.slice.call(nav.languages) : [], [nav.language]);
    for (var i = 0; i < wanted.length; i++) {
      var primary = typeof wanted[i] === "string" ? wanted[i].replace(/^\s+/, "").split(/[-_\s]/)[0].toLowerCase() : "";
      if (primary && Object.prototype.hasOwnProperty.call(STRINGS, primary)) return primary;
    }
    return "en";
  })();

  function t(key, args) {
    // The text of `key` in the widget's language, with {placeholders} filled from args (as text:
    // every caller puts it in textContent or an attribute, never in markup).
    var words = STRINGS[LANG];
    var text = Object.prototype.hasOwnProperty.call(words, key) ? words[key] : STRINGS.en[key];
    return args ? text.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(args, name) ? String(args[name]) : whole;
    }) : text;
  }

  // Times and numbers: the browser's own variant of that language when it has one (en-GB: a 24-hour
  // clock), else the language itself.
  var LOCALES = (function () {
    var nav = window.navigator || {};
    var own = (nav.languages && nav.languages.length ? Array.prototype.slice.call(nav.languages) : [nav.language])
      .filter(function (tag) { return typeof tag === "string" && tag.split(/[-_]/)[0].toLowerCase() === LANG; });
    return own.length ? own : [LANG];
  })();

  function number(n) {
    try { return n.toLocaleString(LOCALES); } catch (e) { return String(n); }
  }

  var KEY = script.getAttribute("data-key");
  var USER_ID = script.getAttribute("data-user-id") || "";
  var USER_HASH = script.getAttribute("data-user-hash") || "";
  var TITLE = script.getAttribute("data-title") || t("title");
  var ACCENT = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(script.getAttribute("data-color") || "")
    ? script.getAttribute("data-color") : "#2f6b4f";
  var MAX_TEXT = 2000;
  var RECONNECT_BASE_MS = 1000;
  var RECONNECT_CAP_MS = 30000;
  var ACK_TIMEOUT_MS = 15000;
  var RATE_RETRY_MS = 5000;
  var UNAVAILABLE_RETRY_MS = 3000;
  var MAX_DROPS = 3;             // sockets lost while a message awaited its ack: then it is not sent
  var GAP_FILL_MS = 1500;
  var TYPING_TIMEOUT_MS = 20000;
  var TYPING_REPEAT_MS = 2000;   // visitor typing: `on: true` at most this often while she types
  var TYPING_IDLE_MS = 3000;     // ... and `on: false` after this long without a keystroke
  var CLOSE_BAD_KEY = 4401;
  var CLOSE_BAD_ORIGIN = 4403;
  var LOG_PREFIX = "[chat widget] ";

  var WS_URL = (function () {
    // The server is where this file came from (or data-server), whatever page embeds it.
    var server = script.getAttribute("data-server");
    var base = new URL(server || script.src, document.baseURI);
    var path = base.pathname;
    var prefix = server ? path.replace(/\/+$/, "") : path.slice(0, Math.max(path.indexOf("/static/"), 0));
    return (base.protocol === "https:" ? "wss:" : "ws:") + "//" + base.host + prefix + "/ws/widget/";
  })();

  // --- storage (localStorage may be missing or throw: private modes, sandboxed frames) ---

  var memoryStore = {};
  function storeGet(name) {
    try { return window.localStorage.getItem(name); } catch (e) { return memoryStore[name] || null; }
  }
  function storeSet(name, value) {
    try { window.localStorage.setItem(name, value); } catch (e) { memoryStore[name] = value; }
  }
  function storeGetJSON(name, fallback) {
    try { var v = JSON.parse(storeGet(name)); return v === null ? fallback : v; } catch (e) { return fallback; }
  }
  var TOKEN_KEY = "nwcb:visitor:" + KEY;
  var OUTBOX_KEY = "nwcb:outbox:" + KEY;
  var RATINGS_KEY = "nwcb:ratings:" + KEY;
  var NOTES_KEY = "nwcb:conversations:" + KEY; // conversation id -> {rated, contact, agent}

  function newClientId() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") {
      try { return c.randomUUID(); } catch (e) { /* insecure context: fall through */ }
    }
    var bytes = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // --- styles ---

  var CSS = [
    ":host{all:initial}",
    ".nwcb-root{--nwcb-accent:" + ACCENT + ";font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2421;-webkit-font-smoothing:antialiased}",
    ".nwcb-root *,.nwcb-root *::before,.nwcb-root *::after{box-sizing:border-box}",
    ".nwcb-root [hidden]{display:none!important}",
    ".nwcb-sr{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}",
    ".nwcb-root button{font:inherit;margin:0;cursor:pointer;-webkit-appearance:none;appearance:none}",
    // no more specific than a class, so .nwcb-send{color:#fff} and the like win
    ".nwcb-root :where(button){color:inherit}",
    ".nwcb-root :focus-visible{outline:3px solid #f2b84b;outline-offset:2px}",
    // bubble
    ".nwcb-bubble{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:60px;height:60px;border-radius:50%;border:0;padding:0;background:var(--nwcb-accent);color:#fff;box-shadow:0 6px 20px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;transition:transform .15s ease}",
    ".nwcb-bubble:hover{transform:scale(1.06)}",
    ".nwcb-bubble svg{width:28px;height:28px;fill:currentColor}",
    ".nwcb-bubble .nwcb-icon-close{display:none;width:26px;height:26px;fill:none;stroke:currentColor;stroke-width:2.4;stroke-linecap:round}",
    ".nwcb-root[data-open=true] .nwcb-bubble .nwcb-icon-chat{display:none}",
    ".nwcb-root[data-open=true] .nwcb-bubble .nwcb-icon-close{display:block}",
    ".nwcb-badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#c8372d;color:#fff;font-size:12px;font-weight:700;line-height:20px;text-align:center;border:2px solid #fff}",
    // panel
    ".nwcb-panel{position:fixed;right:20px;bottom:92px;z-index:2147483001;width:370px;height:560px;max-height:calc(100vh - 112px);display:flex;flex-direction:column;background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.28);overflow:hidden;animation:nwcb-in .16s ease-out}",
    "@keyframes nwcb-in{from{opacity:0;transform:translateY(12px)}to{opacity:1;transform:none}}",
    ".nwcb-header{display:flex;align-items:center;gap:10px;padding:14px 12px 14px 16px;background:var(--nwcb-accent);color:#fff;flex:none}",
    ".nwcb-heading{flex:1;min-width:0}",
    ".nwcb-title{margin:0;font-size:16px;font-weight:650;line-height:1.25;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".nwcb-status{margin:2px 0 0;font-size:12px;opacity:.92;display:flex;align-items:center;gap:6px}",
    ".nwcb-dot{width:8px;height:8px;border-radius:50%;background:#9aa5a0;flex:none}",
    ".nwcb-status[data-state=online] .nwcb-dot{background:#7ee2a8}",
    ".nwcb-status[data-state=online][data-owner=waiting] .nwcb-dot{background:#f2d27a}",
    ".nwcb-status[data-state=online][data-owner=waiting][data-agents=away] .nwcb-dot,.nwcb-status[data-state=online][data-owner=resolved] .nwcb-dot{background:#c9d1cc}",
    ".nwcb-status[data-state=offline] .nwcb-dot,.nwcb-status[data-state=unavailable] .nwcb-dot{background:#ffb4a8}",
    ".nwcb-status-text{min-width:0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".nwcb-close{flex:none;width:36px;height:36px;border:0;border-radius:8px;background:transparent;color:#fff;display:flex;align-items:center;justify-content:center;padding:0}",
    ".nwcb-close:hover{background:rgba(255,255,255,.16)}",
    ".nwcb-close svg{width:20px;height:20px;stroke:currentColor;stroke-width:2.2;fill:none}",
    ".nwcb-notice{flex:none;margin:0;padding:8px 14px;font-size:13px;background:#fff4de;color:#5c4200;border-bottom:1px solid #f1dfb4}",
    ".nwcb-notice[data-kind=fatal]{background:#fdecea;color:#7a1c14;border-bottom-color:#f5c6c0}",
    // messages
    ".nwcb-messages{flex:1;min-height:0;overflow-y:auto;overscroll-behavior:contain;margin:0;padding:14px 12px 6px;list-style:none;background:#f6f7f5;display:flex;flex-direction:column;gap:8px}",
    ".nwcb-empty{margin:auto;padding:24px;text-align:center;color:#66706b;font-size:13px}",
    ".nwcb-msg{position:relative;display:flex;flex-direction:column;max-width:84%;align-self:flex-start}",
    ".nwcb-msg--visitor{align-self:flex-end;align-items:flex-end}",
    ".nwcb-msg--system{align-self:center;max-width:92%;align-items:center}",
    ".nwcb-text{padding:9px 12px;border-radius:14px;background:#fff;border:1px solid #e3e7e4;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}",
    ".nwcb-msg--bot .nwcb-text,.nwcb-msg--agent .nwcb-text{border-bottom-left-radius:4px}",
    ".nwcb-msg--agent .nwcb-text{border-color:#c9d9f2;background:#eef4fd}",
    ".nwcb-msg--visitor .nwcb-text{background:var(--nwcb-accent);border-color:transparent;color:#fff;border-bottom-right-radius:4px}",
    ".nwcb-msg--visitor .nwcb-text a{color:#fff}",
    ".nwcb-msg--system .nwcb-text{background:transparent;border:0;color:#55605a;font-size:13px;text-align:center;padding:4px 8px}",
    ".nwcb-text a{color:var(--nwcb-accent);text-decoration:underline}",
    ".nwcb-msg--pending .nwcb-text{opacity:.7}",
    ".nwcb-msg--failed .nwcb-text{background:#fdecea;color:#7a1c14;border:1px solid #f5c6c0}",
    ".nwcb-meta{display:flex;align-items:center;gap:6px;margin-top:3px;padding:0 4px;font-size:11px;color:#6b746f;min-height:16px}",
    ".nwcb-who{font-weight:600}",
    ".nwcb-meta:empty{display:none}",
    ".nwcb-rating{display:inline-flex;gap:2px;margin-left:2px}",
    ".nwcb-rate{width:26px;height:24px;border:1px solid transparent;background:transparent;border-radius:6px;padding:0;color:#7b8580;display:inline-flex;align-items:center;justify-content:center}",
    ".nwcb-rate svg{width:15px;height:15px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}",
    ".nwcb-rate:hover{color:#1d2421;background:#eceeed}",
    ".nwcb-rate[aria-pressed=true]{color:var(--nwcb-accent);border-color:#cfd8d3;background:#fff}",
    ".nwcb-rate[aria-pressed=true] svg{fill:rgba(47,107,79,.18)}",
    // choices: answers to a bot question (Yes / No), under the last message only
    ".nwcb-choices{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}",
    ".nwcb-choice{min-height:32px;max-width:100%;border:1px solid var(--nwcb-accent);border-radius:16px;padding:5px 14px;background:#fff;color:var(--nwcb-accent);font-size:13px;font-weight:600;line-height:1.25;text-align:center;white-space:normal;overflow-wrap:anywhere}",
    ".nwcb-choice:hover{background:var(--nwcb-accent);color:#fff}",
    // typing
    ".nwcb-typing{flex:none;display:flex;align-items:center;gap:8px;padding:4px 16px 6px;font-size:12px;color:#66706b;background:#f6f7f5}",
    ".nwcb-dots{display:inline-flex;gap:3px}",
    ".nwcb-dots i{width:6px;height:6px;border-radius:50%;background:#8a948f;animation:nwcb-blink 1.2s infinite both}",
    ".nwcb-dots i:nth-child(2){animation-delay:.2s}.nwcb-dots i:nth-child(3){animation-delay:.4s}",
    "@keyframes nwcb-blink{0%,80%,100%{opacity:.25}40%{opacity:1}}",
    // cards: leave an e-mail address, rate the conversation
    ".nwcb-cards{flex:none;padding:0 12px 10px;background:#f6f7f5}",
    ".nwcb-card{margin:0;padding:12px 14px;background:#fff;border:1px solid #e3e7e4;border-radius:12px;box-shadow:0 1px 2px rgba(0,0,0,.04)}",
    ".nwcb-card+.nwcb-card{margin-top:8px}",
    ".nwcb-card-title{margin:0 0 4px;font-size:14px;font-weight:650;color:#1d2421}",
    ".nwcb-card-text{margin:0 0 10px;font-size:13px;color:#55605a}",
    ".nwcb-card[data-done=true] .nwcb-card-text{margin:0}",
    ".nwcb-contact-row{display:flex;gap:8px;margin:0}",
    ".nwcb-contact-transcript{display:flex;gap:6px;align-items:center;margin:8px 0 0;font-size:12px;color:#55605a}",
    ".nwcb-contact-input{flex:1;min-width:0;height:38px;border:1px solid #cdd5d0;border-radius:8px;padding:0 10px;font:inherit;font-size:15px;color:inherit;background:#fff;margin:0}",
    ".nwcb-contact-input:focus{outline:none;border-color:var(--nwcb-accent);box-shadow:0 0 0 3px rgba(47,107,79,.18)}",
    ".nwcb-contact-input[aria-invalid=true]{border-color:#c8372d}",
    ".nwcb-card-btn{flex:none;height:38px;border:0;border-radius:8px;padding:0 14px;background:var(--nwcb-accent);color:#fff}",
    ".nwcb-cards .nwcb-card-btn{font-weight:600}",
    ".nwcb-card[aria-busy=true] button{opacity:.55;cursor:progress}",
    ".nwcb-card-error{margin:6px 0 0;font-size:12px;color:#a3271c}",
    ".nwcb-stars{display:flex;gap:4px}",
    ".nwcb-star{width:40px;height:40px;border:0;border-radius:8px;padding:0;background:transparent;color:#c3cbc6;display:flex;align-items:center;justify-content:center}",
    ".nwcb-star svg{width:28px;height:28px;fill:currentColor}",
    ".nwcb-star:hover{background:#f1f3f2}",
    ".nwcb-star[data-lit=true]{color:#e9a91c}",
    ".nwcb-scale{display:flex;justify-content:space-between;width:216px;margin-top:2px;font-size:11px;color:#6b746f}",
    // composer
    ".nwcb-error{flex:none;margin:0;padding:7px 14px;font-size:13px;background:#fdecea;color:#7a1c14;border-top:1px solid #f5c6c0}",
    ".nwcb-form{flex:none;display:flex;align-items:flex-end;gap:8px;padding:10px;border-top:1px solid #e3e7e4;background:#fff;margin:0}",
    ".nwcb-input{flex:1;min-width:0;resize:none;border:1px solid #cdd5d0;border-radius:10px;padding:9px 11px;font:inherit;font-size:15px;line-height:1.35;color:inherit;background:#fff;max-height:120px;min-height:40px;margin:0}",
    ".nwcb-input:focus{outline:none;border-color:var(--nwcb-accent);box-shadow:0 0 0 3px rgba(47,107,79,.18)}",
    ".nwcb-input:disabled{background:#f1f3f2;color:#8a948f}",
    ".nwcb-send{flex:none;width:40px;height:40px;border:0;border-radius:10px;background:var(--nwcb-accent);color:#fff;display:flex;align-items:center;justify-content:center;padding:0}",
    ".nwcb-send:disabled{opacity:.45;cursor:default}",
    ".nwcb-send svg{width:20px;height:20px;fill:currentColor}",
    // phones: the panel takes the whole screen
    "@media (max-width:480px){",
    ".nwcb-panel{inset:0;right:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0;animation:none}",
    ".nwcb-root[data-open=true] .nwcb-bubble{display:none}",
    ".nwcb-bubble{right:16px;bottom:16px}",
    ".nwcb-msg{max-width:88%}",
    ".nwcb-input,.nwcb-contact-input{font-size:16px}",
    "}",
    "@media (prefers-reduced-motion:reduce){.nwcb-panel,.nwcb-dots i,.nwcb-bubble{animation:none;transition:none}}"
  ].join("\n");

  var ICON_CHAT = '<svg class="nwcb-icon-chat" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z"/></svg>';
  var ICON_CLOSE = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M6 6l12 12M18 6L6 18"/></svg>';
  var ICON_DOWN = '<svg class="nwcb-icon-close" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M6 9l6 6 6-6"/></svg>';
  var ICON_UP = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3"/></svg>';
  var ICON_THUMB_DOWN = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17"/></svg>';
  var ICON_STAR = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 2.5l2.94 5.96 6.56.95-4.75 4.63 1.12 6.54L12 17.5l-5.87 3.08 1.12-6.54L2.5 9.41l6.56-.95z"/></svg>';
  var ICON_SEND = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M3.4 20.4l17.45-7.48a1 1 0 0 0 0-1.84L3.4 3.6a1 1 0 0 0-1.39 1.14L4 11l9 1-9 1-1.99 6.26a1 1 0 0 0 1.39 1.14z"/></svg>';

  // --- DOM ---

  function el(tag, className, attrs) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (attrs) for (var name in attrs) if (Object.prototype.hasOwnProperty.call(attrs, name)) node.setAttribute(name, attrs[name]);
    return node;
  }

  var host = document.createElement("nwcb-widget");
  host.setAttribute("data-key", KEY);
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = el("style");
  style.textContent = host.attachShadow ? CSS : CSS.replace(":host{all:initial}", "");
  var ui = el("div", "nwcb-root", { "data-open": "false", lang: LANG }); // the bubble's label too

  var bubble = el("button", "nwcb-bubble", {
    type: "button", "aria-label": t("open"), "aria-expanded": "false", "aria-controls": "nwcb-panel"
  });
  bubble.innerHTML = ICON_CHAT + ICON_DOWN; // constant markup, no data
  var badge = el("span", "nwcb-badge", { "aria-hidden": "true" });
  badge.hidden = true;
  bubble.appendChild(badge);

  var panel = el("section", "nwcb-panel", { id: "nwcb-panel", role: "dialog", "aria-labelledby": "nwcb-title", lang: LANG });
  panel.hidden = true;
  var header = el("header", "nwcb-header");
  var heading = el("div", "nwcb-heading");
  var title = el("h2", "nwcb-title", { id: "nwcb-title" });
  title.textContent = TITLE;
  var statusLine = el("p", "nwcb-status", { "data-state": "idle" });
  var statusDot = el("span", "nwcb-dot", { "aria-hidden": "true" });
  var statusText = el("span", "nwcb-status-text");
  statusLine.appendChild(statusDot);
  statusLine.appendChild(statusText);
  heading.appendChild(title);
  heading.appendChild(statusLine);
  var closeBtn = el("button", "nwcb-close", { type: "button", "aria-label": t("close") });
  closeBtn.innerHTML = ICON_CLOSE;
  header.appendChild(heading);
  header.appendChild(closeBtn);

  var notice = el("p", "nwcb-notice", { role: "status" });
  notice.hidden = true;
  var list = el("ol", "nwcb-messages", { role: "log", "aria-live": "polite", "aria-label": t("conversation"), tabindex: "0" });
  var empty = el("li", "nwcb-empty");
  empty.textContent = t("hint");
  list.appendChild(empty);
  var typing = el("div", "nwcb-typing", { "aria-live": "polite" });
  typing.hidden = true;
  var dots = el("span", "nwcb-dots", { "aria-hidden": "true" });
  dots.appendChild(el("i"));
  dots.appendChild(el("i"));
  dots.appendChild(el("i"));
  var typingText = el("span");
  typing.appendChild(dots);
  typing.appendChild(typingText);
  var errorBox = el("p", "nwcb-error", { role: "alert" });
  errorBox.hidden = true;

  // Cards between the conversation and the composer: built once, shown by renderCards().
  var cards = el("div", "nwcb-cards", { "aria-live": "polite" });
  cards.hidden = true;

  var contactCard = el("form", "nwcb-card nwcb-contact", { novalidate: "", "data-done": "false", "aria-labelledby": "nwcb-contact-title" });
  contactCard.hidden = true;
  var contactTitle = el("p", "nwcb-card-title", { id: "nwcb-contact-title" });
  contactTitle.textContent = t("contactTitle");
  var contactText = el("p", "nwcb-card-text");
  contactText.textContent = t("contactText");
  var contactRow = el("div", "nwcb-contact-row");
  var contactLabel = el("label", "nwcb-sr", { "for": "nwcb-contact-input" });
  contactLabel.textContent = t("contactLabel");
  var contactInput = el("input", "nwcb-contact-input", {
    id: "nwcb-contact-input", type: "email", name: "email", autocomplete: "email", inputmode: "email",
    maxlength: "254", placeholder: t("contactPlaceholder"), "aria-describedby": "nwcb-contact-error"
  });
  var contactBtn = el("button", "nwcb-card-btn", { type: "submit" });
  contactBtn.textContent = t("contactSend");
  var contactError = el("p", "nwcb-card-error", { id: "nwcb-contact-error", role: "alert" });
  contactError.hidden = true;
  contactRow.appendChild(contactLabel);
  contactRow.appendChild(contactInput);
  contactRow.appendChild(contactBtn);
  // Her transcript, mailed when the conversation is resolved (the contact frame's `transcript`).
  var contactTranscript = el("label", "nwcb-contact-transcript");
  var contactTranscriptBox = el("input", "", { type: "checkbox", name: "transcript" });
  contactTranscript.appendChild(contactTranscriptBox);
  contactTranscript.appendChild(document.createTextNode(t("contactTranscript")));
  contactCard.appendChild(contactTitle);
  contactCard.appendChild(contactText);
  contactCard.appendChild(contactRow);
  contactCard.appendChild(contactTranscript);
  contactCard.appendChild(contactError);

  var CSAT_LABELS = [t("csat1"), t("csat2"), t("csat3"), t("csat4"), t("csat5")];
  var csatCard = el("div", "nwcb-card nwcb-csat", { "data-done": "false" });
  csatCard.hidden = true;
  var csatTitle = el("p", "nwcb-card-title", { id: "nwcb-csat-title" });
  csatTitle.textContent = t("csatTitle");
  var csatText = el("p", "nwcb-card-text");
  csatText.textContent = t("csatText");
  var csatStars = el("div", "nwcb-stars", { role: "group", "aria-labelledby": "nwcb-csat-title" });
  var csatButtons = CSAT_LABELS.map(function (text, i) {
    var b = el("button", "nwcb-star", {
      type: "button", "data-csat": String(i + 1), "aria-label": t("csatStar", { label: text, n: i + 1 }),
      title: text, "aria-pressed": "false"
    });
    b.innerHTML = ICON_STAR; // constant markup, no data
    csatStars.appendChild(b);
    return b;
  });
  var csatScale = el("div", "nwcb-scale", { "aria-hidden": "true" });
  var scaleLow = el("span");
  scaleLow.textContent = CSAT_LABELS[0];
  var scaleHigh = el("span");
  scaleHigh.textContent = CSAT_LABELS[4];
  csatScale.appendChild(scaleLow);
  csatScale.appendChild(scaleHigh);
  csatCard.appendChild(csatTitle);
  csatCard.appendChild(csatText);
  csatCard.appendChild(csatStars);
  csatCard.appendChild(csatScale);
  cards.appendChild(contactCard);
  cards.appendChild(csatCard);

  var form = el("form", "nwcb-form", { novalidate: "" });
  var label = el("label", "nwcb-sr", { "for": "nwcb-input" });
  label.textContent = t("messageLabel");
  var input = el("textarea", "nwcb-input", {
    id: "nwcb-input", rows: "1", maxlength: String(MAX_TEXT), placeholder: t("placeholder"),
    autocomplete: "off", enterkeyhint: "send"
  });
  var sendBtn = el("button", "nwcb-send", { type: "submit", "aria-label": t("send") });
  sendBtn.innerHTML = ICON_SEND;
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendBtn);

  panel.appendChild(header);
  panel.appendChild(notice);
  panel.appendChild(list);
  panel.appendChild(typing);
  panel.appendChild(cards);
  panel.appendChild(errorBox);
  panel.appendChild(form);
  ui.appendChild(panel);
  ui.appendChild(bubble);
  root.appendChild(style);
  root.appendChild(ui);

  // --- state ---

  var ws = null;
  var sessionReady = false;      // the current socket has received its `session` frame
  var fatal = false;             // refused for key or origin: never reconnect
  var started = false;           // a connection has been wanted at least once
  var attempt = 0;               // failed connects in a row, for the back-off
  var reconnectTimer = null;
  var rateTimer = null;
  var gapTimer = null;
  var typingTimer = null;
  var errorTimer = null;
  var token = storeGet(TOKEN_KEY) || "";
  var conversation = null;       // null until the visitor's first message has started one
  var refusedIdentity = "";      // the server refused the visitor's identity (its error code)
  var messages = {};             // id -> {msg, node}
  var seqSeen = {};              // seq -> true
  var watermark = null;          // every seq up to here has been seen (null: nothing yet)
  var maxSeq = 0;
  var lastMsg = null;            // the message with the highest seq shown (its choices, if any, are buttons)
  var choicesNode = null;        // the buttons shown under it, when they are
  var paging = false;            // the next page of a resume is asked for (the server said `more`)
  var greetingNode = null;
  var unread = 0;
  var isOpen = false;
  var outbox = [];               // {client_id, text, node, failed} in send order
  var inflight = [];             // client_ids sent on the current socket, awaiting ack or error
  var ackTimers = {};
  var ratings = storeGetJSON(RATINGS_KEY, {}) || {};
  var owner = "bot";             // who holds the conversation: bot, waiting, human or resolved
  var agentsOnline = false;      // whether a person could answer now (told with the status)
  var storeOpen = true;          // within the store's business hours (`open`; a store without hours: always)
  var backAt = "";               // while closed, when the team is back (`back_at`, ISO 8601)
  var agentName = "";            // display name of the agent holding it, when known
  var contactPending = false;    // a `contact` frame awaits its answer
  var csatPending = false;       // a `csat` frame awaits its answer
  var pinned = true;             // the list shows its newest message; kept so when it resizes
  var typingOn = false;          // the visitor's `typing on` was the last typing frame sent
  var typingSentAt = 0;
  var typingIdleTimer = null;

  // --- rendering ---

  var URL_RE = /https?:\/\/[^\s<>"']+/g;

  function renderText(node, text) {
    // Text only: links are built as elements, never parsed from markup.
    node.textContent = "";
    var last = 0;
    text.replace(URL_RE, function (match, offset) {
      var url = match.replace(/[.,!?;:)\]]+$/, "");
      var safe = false;
      try { safe = /^https?:$/.test(new URL(url).protocol); } catch (e) { safe = false; }
      if (!safe) return match;
      node.appendChild(document.createTextNode(text.slice(last, offset)));
      var a = el("a", null, { href: url, target: "_blank", rel: "noopener noreferrer nofollow" });
      a.textContent = url;
      node.appendChild(a);
      last = offset + url.length;
      return match;
    });
    node.appendChild(document.createTextNode(text.slice(last)));
  }

  var WHO = { visitor: t("whoVisitor"), bot: t("whoBot"), agent: t("whoAgent"), system: t("whoSystem") };

  function timeLabel(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    try { return d.toLocaleTimeString(LOCALES, { hour: "2-digit", minute: "2-digit" }); } catch (e) { return ""; }
  }

  function authorOf(msg) {
    var name = typeof msg.author === "string" ? msg.author.replace(/^\s+|\s+$/g, "") : "";
    return name ? name.slice(0, 80) : WHO.agent;
  }

  function bubbleNode(sender, text, name) {
    var li = el("li", "nwcb-msg nwcb-msg--" + (WHO[sender] ? sender : "bot"));
    var who = el("span", "nwcb-sr");
    who.textContent = (name || WHO[sender] || WHO.bot) + ": ";
    var body = el("div", "nwcb-text");
    renderText(body, text);
    var meta = el("div", "nwcb-meta");
    li.appendChild(who);
    li.appendChild(body);
    li.appendChild(meta);
    return li;
  }

  function metaFor(node) { return node.querySelector(".nwcb-meta"); }

  function setMeta(node, msg) {
    var meta = metaFor(node);
    meta.textContent = "";
    if (msg.sender === "agent") {
      var who = el("span", "nwcb-who");
      who.textContent = authorOf(msg);
      meta.appendChild(who);
    }
    var t = timeLabel(msg.created_at);
    if (t) {
      var time = el("time", null, { datetime: String(msg.created_at) });
      time.textContent = t;
      meta.appendChild(time);
    }
    if (msg.sender === "bot") meta.appendChild(ratingButtons(msg.id));
  }

  function ratingButtons(id) {
    var group = el("span", "nwcb-rating", { role: "group", "aria-label": t("helpfulQuestion") });
    [["up", ICON_UP, t("helpful")], ["down", ICON_THUMB_DOWN, t("notHelpful")]].forEach(function (r) {
      var b = el("button", "nwcb-rate", {
        type: "button", "data-rating": r[0], "aria-label": r[2], title: r[2],
        "aria-pressed": ratings[id] === r[0] ? "true" : "false"
      });
      b.innerHTML = r[1]; // constant markup, no data
      b.addEventListener("click", function () { rate(id, r[0], group); });
      group.appendChild(b);
    });
    return group;
  }

  function insertBySeq(node, seq) {
    // Seq-ordered messages first, pending ones (no seq yet) after them.
    var children = list.children;
    for (var i = 0; i < children.length; i++) {
      var c = children[i];
      if (c === greetingNode || c === empty) continue;
      var s = c.getAttribute("data-seq");
      if (s === null || Number(s) > seq) { list.insertBefore(node, c); return; }
    }
    list.appendChild(node);
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToEnd(force) {
    if (force || nearBottom()) {
      list.scrollTop = list.scrollHeight;
      pinned = true;
    }
  }

  function keepPinned() {
    // The list got shorter (keyboard, a taller draft, a card, the typing line): stay at the newest message.
    if (pinned && !panel.hidden) list.scrollTop = list.scrollHeight;
  }

  function updateEmpty() {
    if (fatal) { empty.hidden = true; return; }
    var hasContent = !!greetingNode || outbox.length > 0 || Object.keys(messages).length > 0;
    empty.hidden = hasContent;
  }

  function validMessage(m) {
    return m && typeof m === "object" && (typeof m.id === "number" || typeof m.id === "string") &&
      typeof m.seq === "number" && typeof m.text === "string" && typeof m.sender === "string";
  }

  function addMessage(msg, live) {
    if (!validMessage(msg)) return;
    if (messages[msg.id]) return; // dedupe by id
    var stick = nearBottom();
    var node = bubbleNode(msg.sender, msg.text, msg.sender === "agent" ? authorOf(msg) : "");
    node.setAttribute("data-id", String(msg.id));
    node.setAttribute("data-seq", String(msg.seq));
    setMeta(node, msg);
    insertBySeq(node, msg.seq);
    messages[msg.id] = { msg: msg, node: node };
    if (!lastMsg || msg.seq > lastMsg.seq) lastMsg = msg;
    noteSeq(msg.seq);
    if (msg.sender === "bot" || msg.sender === "agent") showTyping(msg.sender, false);
    if (msg.sender === "agent" && owner === "human" && !agentName && typeof msg.author === "string" && msg.author) {
      agentName = authorOf(msg);
      setNote("agent", agentName);
      renderStatus();
    }
    if (live && msg.sender !== "visitor" && !isOpen) {
      unread += 1;
      renderBadge();
    }
    updateEmpty();
    renderChoices();
    scrollToEnd(stick || msg.sender === "visitor");
  }

  function choicesOf(msg) {
    // A bot question's answers as buttons: the labels the server wrote, as text; one that could not be
    // sent as a message is left out.
    if (!msg || msg.sender !== "bot" || !Array.isArray(msg.choices)) return [];
    return msg.choices.filter(function (c) {
      return typeof c === "string" && /\S/.test(c) && c.replace(/^\s+|\s+$/g, "").length <= MAX_TEXT;
    });
  }

  function renderChoices() {
    // Buttons under the last message while it is a bot question with choices and nothing came after it
    // (no later message, nothing of the visitor's waiting to be sent); any later message removes them.
    var wanted = !fatal && outbox.length === 0 && lastMsg && messages[lastMsg.id] ? choicesOf(lastMsg) : [];
    var under = wanted.length ? messages[lastMsg.id].node : null;
    if (under && choicesNode && choicesNode.parentNode === under) return; // shown already
    if (choicesNode) {
      var hadFocus = focusWithin(choicesNode);
      if (choicesNode.parentNode) choicesNode.parentNode.removeChild(choicesNode);
      choicesNode = null;
      if (hadFocus && !input.disabled) input.focus();
    }
    if (!under) return;
    var stick = nearBottom();
    var group = el("div", "nwcb-choices", { role: "group", "aria-label": t("choices") });
    wanted.forEach(function (text) {
      var b = el("button", "nwcb-choice", { type: "button", "aria-label": text });
      b.textContent = text;
      b.addEventListener("click", function () {
        if (choicesNode !== group) return;
        sendText(text.replace(/^\s+|\s+$/g, "")); // as if typed and sent; the pending bubble removes the buttons
      });
      group.appendChild(b);
    });
    under.insertBefore(group, metaFor(under));
    choicesNode = group;
    scrollToEnd(stick);
  }

  function noteSeq(seq) {
    seqSeen[seq] = true;
    if (seq > maxSeq) maxSeq = seq;
    if (watermark === null) return;
    while (seqSeen[watermark + 1]) watermark += 1;
    if (maxSeq > watermark) scheduleGapFill();
  }

  function scheduleGapFill() {
    // A hole in seq (e.g. a message written in another tab): ask for it unless it shows up.
    if (gapTimer) return;
    gapTimer = setTimeout(function () {
      gapTimer = null;
      if (watermark !== null && maxSeq > watermark && inflight.length === 0 && !paging) send({ type: "resume", after_seq: watermark });
      else if (watermark !== null && maxSeq > watermark) scheduleGapFill();
    }, GAP_FILL_MS);
  }

  function showGreeting(text) {
    if (typeof text !== "string" || !text.trim()) {
      if (greetingNode) { greetingNode.parentNode.removeChild(greetingNode); greetingNode = null; }
      return;
    }
    if (!greetingNode) {
      greetingNode = bubbleNode("bot", text);
      greetingNode.classList.add("nwcb-greeting");
      list.insertBefore(greetingNode, list.firstChild);
    } else {
      renderText(greetingNode.querySelector(".nwcb-text"), text);
    }
  }

  function pendingNode(item) {
    var node = bubbleNode("visitor", item.text);
    node.classList.add("nwcb-msg--pending");
    node.setAttribute("data-client-id", item.client_id);
    metaFor(node).textContent = t("sending");
    list.appendChild(node);
    return node;
  }

  function markPending(item, text) {
    item.node.classList.remove("nwcb-msg--failed");
    item.node.classList.add("nwcb-msg--pending");
    metaFor(item.node).textContent = text;
  }

  function markFailed(item, reason) {
    item.failed = true;
    item.node.classList.remove("nwcb-msg--pending");
    item.node.classList.add("nwcb-msg--failed");
    metaFor(item.node).textContent = reason ? t("notSentReason", { reason: reason }) : t("notSent");
    saveOutbox();
  }

  function resetConversation() {
    Object.keys(messages).forEach(function (id) {
      var n = messages[id].node;
      if (n.parentNode) n.parentNode.removeChild(n);
    });
    messages = {};
    seqSeen = {};
    watermark = null;
    maxSeq = 0;
    lastMsg = null;
    renderChoices();
    agentName = "";
    contactPending = csatPending = false;
    resetContactCard();
    resetCsatCard();
  }

  function renderBadge() {
    badge.hidden = unread === 0;
    badge.textContent = unread > 9 ? "9+" : String(unread);
    bubble.setAttribute("aria-label", !unread ? t("open") : unread === 1 ? t("openUnreadOne") : t("openUnreadMany", { count: number(unread) }));
  }

  var OWNERS = ["bot", "waiting", "human", "resolved"];
  function knownOwner(status) { return OWNERS.indexOf(status) >= 0; }

  function ownerText() {
    if (owner === "waiting" && !storeOpen && backWhen()) return t("statusClosed", { when: backWhen() });
    if (owner === "waiting") return agentsOnline && storeOpen ? t("statusWaiting") : t("statusAway");
    if (owner === "human") return agentName ? t("statusChatting", { name: agentName }) : t("statusChattingTeam");
    if (owner === "resolved") return t("statusResolved");
    return t("statusOnline");
  }

  function renderStatus() {
    // data-state is the connection; data-owner who answers (only told while connected).
    var state = statusLine.getAttribute("data-state");
    statusText.textContent = state === "online" ? ownerText() : t({
      idle: "statusIdle", connecting: "statusConnecting", offline: "statusOffline", unavailable: "statusUnavailable"
    }[state]);
    statusLine.title = statusText.textContent;
    statusLine.setAttribute("data-owner", owner);
    statusLine.setAttribute("data-agents", agentsOnline && storeOpen ? "online" : "away");
    ui.setAttribute("data-owner", owner);
  }

  function setStatus(state) {
    statusLine.setAttribute("data-state", state);
    renderStatus();
    if (state === "offline") {
      showNotice(t(navigator.onLine === false ? "noticeOffline" : "noticeReconnecting"), "offline");
    } else if (state !== "unavailable" && notice.getAttribute("data-kind") === "offline") {
      notice.hidden = true;
    }
  }

  function showNotice(text, kind) {
    var stick = nearBottom();
    notice.textContent = text;
    notice.setAttribute("data-kind", kind);
    notice.hidden = false;
    scrollToEnd(stick);
  }

  function showError(text) {
    var stick = nearBottom();
    errorBox.textContent = text;
    errorBox.hidden = false;
    scrollToEnd(stick);
    clearTimeout(errorTimer);
    errorTimer = setTimeout(function () { errorBox.hidden = true; }, 8000);
  }

  function showTyping(sender, on) {
    clearTimeout(typingTimer);
    if (!on) { typing.hidden = true; return; }
    typingText.textContent = sender !== "agent" ? t("typingBot")
      : agentName ? t("typingAgent", { name: agentName }) : t("typingAgentUnnamed");
    var stick = nearBottom();
    typing.hidden = false;
    scrollToEnd(stick);
    typingTimer = setTimeout(function () { typing.hidden = true; }, TYPING_TIMEOUT_MS);
  }

  // --- who answers: status line, e-mail and rating cards (per-conversation notes in storage) ---

  function notesAll() {
    var all = storeGetJSON(NOTES_KEY, {});
    return all && typeof all === "object" && !Array.isArray(all) ? all : {};
  }

  function note(name) {
    var n = conversation !== null ? notesAll()[conversation] : null;
    return n && typeof n === "object" ? n[name] : undefined;
  }

  function setNote(name, value) {
    if (conversation === null) return;
    var all = notesAll();
    var n = all[conversation] && typeof all[conversation] === "object" ? all[conversation] : {};
    if (value === undefined) delete n[name];
    else n[name] = value;
    all[conversation] = n;
    var ids = Object.keys(all); // integer keys come in ascending order: the oldest conversations first
    while (ids.length > 20) delete all[ids.shift()];
    storeSet(NOTES_KEY, JSON.stringify(all));
  }

  function backWhen() {
    // When the team is back, in the visitor's own time zone and language: "09:00" today, else with the weekday,
    // and the date when it is more than six days away.
    var at = Date.parse(backAt);
    if (!backAt || isNaN(at)) return "";
    var when = new Date(at);
    var options = { hour: "2-digit", minute: "2-digit" };
    if (when.toDateString() !== new Date().toDateString()) options.weekday = "long";
    if (at - Date.now() > 6 * 86400000) { options.day = "numeric"; options.month = "long"; }
    try { return when.toLocaleString(LOCALES, options); } catch (e) { return when.toLocaleString(); }
  }

  function setOwner(status, online, agent, open, back) {
    owner = knownOwner(status) ? status : "bot";
    if (typeof online === "boolean") agentsOnline = online;
    // Business hours: only a store that keeps them says `open` (and `back_at` while closed).
    storeOpen = open !== false;
    backAt = !storeOpen && typeof back === "string" ? back : "";
    if (owner !== "human") agentName = "";
    else if (typeof agent === "string" && agent) agentName = agent.slice(0, 80);
    if (agentName) setNote("agent", agentName);
    if (owner !== "resolved") {
      // The server forgets a rating when the conversation leaves "resolved": ask again next time.
      if (note("rated") !== undefined) setNote("rated", undefined);
      resetCsatCard();
    }
    if (owner !== "waiting" && owner !== "human") stopVisitorTyping(true);
    renderStatus();
    renderCards();
  }

  function renderCards() {
    var stick = nearBottom();
    var wantContact = owner === "waiting" && (!agentsOnline || !storeOpen) && !fatal;
    var contactDone = contactCard.getAttribute("data-done") === "true";
    if (!contactDone) {
      // Outside business hours the card says so, and when the team is back.
      contactTitle.textContent = t(storeOpen ? "contactTitle" : "contactTitleClosed");
      contactText.textContent = !storeOpen && backWhen() ? t("contactTextClosed", { when: backWhen() }) : t("contactText");
    }
    contactCard.hidden = !(wantContact && (contactDone || !note("contact")));
    var csatDone = csatCard.getAttribute("data-done") === "true";
    csatCard.hidden = !(owner === "resolved" && !fatal && (csatDone || note("rated") === undefined));
    cards.hidden = contactCard.hidden && csatCard.hidden;
    scrollToEnd(stick);
  }

  function resetContactCard() {
    if (contactCard.getAttribute("data-done") !== "true") return;
    contactCard.setAttribute("data-done", "false");
    contactTitle.textContent = t("contactTitle");
    contactText.textContent = t("contactText");
    contactRow.hidden = false;
    contactTranscript.hidden = false;
  }

  function contactSubmit() {
    var email = contactInput.value.replace(/^\s+|\s+$/g, "");
    if (!email) { contactFailed(t("contactEmpty")); return; }
    if (!ready()) { contactFailed(t("contactOffline")); return; }
    if (contactPending) return;
    contactPending = send({ type: "contact", email: email, transcript: contactTranscriptBox.checked });
    contactCard.setAttribute("aria-busy", contactPending ? "true" : "false");
    contactError.hidden = true;
    contactInput.removeAttribute("aria-invalid");
  }

  function contactFailed(text) {
    contactPending = false;
    contactCard.setAttribute("aria-busy", "false");
    contactError.textContent = text;
    contactError.hidden = false;
    contactInput.setAttribute("aria-invalid", "true");
    scrollToEnd(false);
  }

  function onContact(f) {
    contactPending = false;
    contactCard.setAttribute("aria-busy", "false");
    setNote("contact", true);
    contactCard.setAttribute("data-done", "true");
    contactTitle.textContent = t("contactThanks");
    contactText.textContent = t("contactDone", { email: typeof f.email === "string" ? f.email : contactInput.value });
    contactRow.hidden = true;
    contactTranscript.hidden = true;
    contactError.hidden = true;
    if (focusWithin(contactCard)) input.focus();
    renderCards();
  }

  function resetCsatCard() {
    csatPending = false;
    csatCard.setAttribute("data-done", "false");
    csatTitle.textContent = t("csatTitle");
    csatText.textContent = t("csatText");
    csatStars.hidden = csatScale.hidden = false;
    csatCard.setAttribute("aria-busy", "false");
    csatButtons.forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    lightStars(0);
  }

  function focusWithin(node) {
    var active = root.activeElement || document.activeElement;
    return !!active && node.contains(active);
  }

  function lightStars(n) {
    csatButtons.forEach(function (b, i) { b.setAttribute("data-lit", i < n ? "true" : "false"); });
  }

  function chosenStars() {
    for (var i = csatButtons.length - 1; i >= 0; i--) if (csatButtons[i].getAttribute("aria-pressed") === "true") return i + 1;
    return 0;
  }

  function csatSubmit(rating) {
    if (csatPending) return;
    if (!ready()) { showError(t("errorRateOffline")); return; }
    csatPending = send({ type: "csat", rating: rating });
    if (!csatPending) return;
    csatCard.setAttribute("aria-busy", "true");
    csatButtons.forEach(function (b, i) { b.setAttribute("aria-pressed", i + 1 === rating ? "true" : "false"); });
    lightStars(rating);
  }

  function csatFailed() {
    csatPending = false;
    csatCard.setAttribute("aria-busy", "false");
    csatButtons.forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    lightStars(0);
  }

  function onCsat(f) {
    var hadFocus = focusWithin(csatCard);
    csatPending = false;
    csatCard.setAttribute("aria-busy", "false");
    var rating = typeof f.rating === "number" ? f.rating : chosenStars();
    setNote("rated", rating);
    csatCard.setAttribute("data-done", "true");
    csatTitle.textContent = t("csatThanks");
    csatText.textContent = t("csatDone", { n: rating });
    csatStars.hidden = csatScale.hidden = true;
    if (hadFocus) input.focus();
    renderCards();
  }

  // --- the visitor's typing, told to agents (only while people have the conversation) ---

  function visitorTyped() {
    if ((owner !== "waiting" && owner !== "human") || !ready()) return;
    if (!/\S/.test(input.value)) { stopVisitorTyping(false); return; }
    var now = Date.now();
    if (!typingOn || now - typingSentAt >= TYPING_REPEAT_MS) {
      if (send({ type: "typing", on: true })) { typingOn = true; typingSentAt = now; }
    }
    clearTimeout(typingIdleTimer);
    typingIdleTimer = setTimeout(function () { stopVisitorTyping(false); }, TYPING_IDLE_MS);
  }

  function stopVisitorTyping(silent) {
    clearTimeout(typingIdleTimer);
    typingIdleTimer = null;
    if (typingOn && !silent && (owner === "waiting" || owner === "human")) send({ type: "typing", on: false });
    typingOn = false;
  }

  // --- outbox (survives reloads, so nothing typed offline is lost) ---

  function saveOutbox() {
    storeSet(OUTBOX_KEY, JSON.stringify(outbox.filter(function (i) { return !i.failed; }).map(function (i) {
      return { client_id: i.client_id, text: i.text };
    })));
  }

  function loadOutbox() {
    var saved = storeGetJSON(OUTBOX_KEY, []);
    if (!Array.isArray(saved)) return;
    saved.forEach(function (s) {
      if (!s || typeof s.client_id !== "string" || typeof s.text !== "string") return;
      var item = { client_id: s.client_id, text: s.text, failed: false };
      item.node = pendingNode(item);
      markPending(item, t("waitingSend"));
      outbox.push(item);
    });
    updateEmpty();
  }

  function outboxItem(clientId) {
    for (var i = 0; i < outbox.length; i++) if (outbox[i].client_id === clientId) return outbox[i];
    return null;
  }

  function removeFromOutbox(item) {
    outbox.splice(outbox.indexOf(item), 1);
    clearTimeout(ackTimers[item.client_id]);
    delete ackTimers[item.client_id];
    saveOutbox();
  }

  function transmit(item) {
    if (!send({ type: "message", text: item.text, client_id: item.client_id })) return;
    inflight.push(item.client_id);
    markPending(item, t("sending"));
    var sock = ws;
    clearTimeout(ackTimers[item.client_id]);
    ackTimers[item.client_id] = setTimeout(function () {
      // No ack on a socket that looks open: treat it as dead; the resend is idempotent.
      if (ws === sock && outboxItem(item.client_id)) dropSocket();
    }, ACK_TIMEOUT_MS);
  }

  function flushOutbox() {
    if (!ready()) return;
    outbox.forEach(function (item) {
      if (!item.failed && inflight.indexOf(item.client_id) < 0) transmit(item);
    });
  }

  function submit() {
    var text = input.value.replace(/^\s+|\s+$/g, "");
    if (!text) return;
    if (sendText(text)) {
      input.value = "";
      autosize();
    }
  }

  function sendText(text) {
    // A visitor message, typed or a choice clicked: a pending bubble, the outbox, then the socket.
    if (fatal) { showError(t("errorFatal")); return false; }
    if (text.length > MAX_TEXT) {
      showError(t("errorTooLongMax", { max: number(MAX_TEXT) }));
      return false;
    }
    stopVisitorTyping(false);
    var item = { client_id: newClientId(), text: text, failed: false };
    item.node = pendingNode(item);
    outbox.push(item);
    saveOutbox();
    errorBox.hidden = true;
    renderChoices();
    updateEmpty();
    scrollToEnd(true);
    if (ready()) transmit(item);
    else {
      markPending(item, t("waitingConnection"));
      connect();
    }
    return true;
  }

  function rate(id, rating, group) {
    if (!ready()) { showError(t("errorRateOffline")); return; }
    send({ type: "feedback", message_id: id, rating: rating });
    ratings[id] = rating;
    var keys = Object.keys(ratings);
    if (keys.length > 200) delete ratings[keys[0]];
    storeSet(RATINGS_KEY, JSON.stringify(ratings));
    Array.prototype.forEach.call(group.querySelectorAll(".nwcb-rate"), function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-rating") === rating ? "true" : "false");
    });
  }

  // --- connection ---

  function ready() { return !!ws && ws.readyState === 1 && sessionReady; }

  function send(frame) {
    if (!ws || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(frame)); return true; } catch (e) { return false; }
  }

  function connect() {
    started = true;
    if (fatal || ws) return;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    var url = WS_URL + "?key=" + encodeURIComponent(KEY) + (token ? "&visitor=" + encodeURIComponent(token) : "") +
      (USER_ID ? "&user_id=" + encodeURIComponent(USER_ID) + "&user_hash=" + encodeURIComponent(USER_HASH) : "") +
      "&lang=" + LANG;
    var sock;
    try { sock = new WebSocket(url); } catch (e) { scheduleReconnect(); return; }
    ws = sock;
    sessionReady = false;
    inflight = [];
    if (statusLine.getAttribute("data-state") !== "offline") setStatus("connecting");
    sock.onmessage = function (ev) { if (ws === sock) onFrame(ev.data); };
    sock.onclose = function (ev) { if (ws === sock) onClosed(ev.code); };
    sock.onerror = function () { /* a close event follows */ };
  }

  function dropSocket() {
    // Forget the socket now instead of waiting for a close handshake on a dead network.
    var sock = ws;
    if (!sock) return;
    sock.onmessage = sock.onclose = sock.onerror = null;
    try { sock.close(); } catch (e) { /* already closing */ }
    onClosed(0);
  }

  function onClosed(code) {
    ws = null;
    sessionReady = false;
    inflight.forEach(countDrop);
    inflight = [];
    showTyping(null, false);
    stopVisitorTyping(true);
    if (contactPending) { contactPending = false; contactCard.setAttribute("aria-busy", "false"); }
    if (csatPending) csatFailed();
    if (code === CLOSE_BAD_KEY || code === CLOSE_BAD_ORIGIN) { refuse(code); return; }
    if (fatal) return;
    setStatus("offline");
    outbox.forEach(function (item) { if (!item.failed) markPending(item, t("waitingConnection")); });
    scheduleReconnect();
  }

  function countDrop(clientId) {
    // A message whose sending loses the socket again and again (a server that cannot take it)
    // would make the widget reconnect and re-send it for ever: after MAX_DROPS it is not sent.
    var item = outboxItem(clientId);
    if (!item || item.failed) return;
    item.drops = (item.drops || 0) + 1;
    if (item.drops >= MAX_DROPS) markFailed(item, t("reasonUndelivered"));
  }

  function scheduleReconnect() {
    if (fatal || reconnectTimer) return;
    var ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * Math.pow(2, attempt));
    var delay = ceiling / 2 + Math.random() * ceiling / 2; // jitter: no thundering herd after a server restart
    attempt += 1;
    reconnectTimer = setTimeout(function () { reconnectTimer = null; connect(); }, delay);
  }

  function reconnectNow() {
    if (fatal || !started || ws) return;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    attempt = 0;
    connect();
  }

  function refuse(code) {
    if (fatal) return;
    fatal = true;
    clearTimeout(reconnectTimer);
    var why = refusedIdentity ? "the visitor's identity (data-user-id, data-user-hash) is " +
      (refusedIdentity === "identity_required" ? "missing and the store requires it" : "not correctly signed")
      : code === CLOSE_BAD_ORIGIN
      ? "this website (" + location.origin + ") is not among the store's allowed origins"
      : "the widget key \"" + KEY + "\" is unknown or inactive";
    if (window.console) console.error(LOG_PREFIX + "The chat server refused the connection: " + why + ". Check the data-key of the <script> tag and the store's allowed origins.");
    setStatus("unavailable");
    showNotice(t("noticeUnavailable"), "fatal");
    input.disabled = true;
    input.placeholder = t("placeholderUnavailable");
    sendBtn.disabled = true;
    empty.hidden = true;
    outbox.forEach(function (item) { if (!item.failed) markFailed(item, t("reasonUnavailable")); });
    renderCards();
    renderChoices();
  }

  // --- frames ---

  function onFrame(data) {
    var f;
    try { f = JSON.parse(data); } catch (e) { return; }
    if (!f || typeof f !== "object") return;
    switch (f.type) {
      case "session": onSession(f); break;
      case "ack": onAck(f); break;
      case "message": addMessage(f.message, true); break;
      case "resumed": onResumed(f); break;
      case "typing": showTyping(f.sender, !!f.on); break;
      case "status": if (knownOwner(f.status)) setOwner(f.status, f.agents_online, f.agent, f.open, f.back_at); break;
      case "contact": onContact(f); break;
      case "csat": onCsat(f); break;
      case "error": onError(f); break;
      default: break; // newer servers may add frames
    }
  }

  function onSession(f) {
    if (typeof f.visitor === "string" && f.visitor && f.visitor.length < 200) {
      token = f.visitor;
      storeSet(TOKEN_KEY, token);
    }
    var resumeFrom = null;
    var current = typeof f.conversation === "number" ? f.conversation : null;
    if (conversation !== null && current !== conversation) resetConversation();
    else if (conversation !== null) resumeFrom = watermark;
    conversation = current;
    if (!script.getAttribute("data-title") && typeof f.name === "string" && f.name) title.textContent = f.name;
    showGreeting(f.greeting);
    var history = Array.isArray(f.messages) ? f.messages.filter(validMessage) : [];
    if (watermark === null) {
      var lowest = history.reduce(function (lo, m) { return Math.min(lo, m.seq); }, Infinity);
      watermark = isFinite(lowest) ? lowest - 1 : 0;
    }
    history.forEach(function (m) { addMessage(m, false); });
    var status = knownOwner(f.status) ? f.status : "bot"; // older servers say nothing: the bot answers
    var name = typeof f.agent === "string" && f.agent ? f.agent : "";
    if (status === "human" && !name) {
      // The session frame does not name the agent: the one a status frame named last, else the last who wrote.
      history.forEach(function (m) { if (m.sender === "agent" && typeof m.author === "string" && m.author) name = m.author; });
      if (typeof note("agent") === "string" && note("agent")) name = note("agent");
    }
    if (typeof f.csat === "number" && status === "resolved") setNote("rated", f.csat);
    setOwner(status, f.agents_online === true, name, f.open, f.back_at);
    // Pending items that the server already stored (acks lost with the old socket) are
    // matched by their ack when they are re-sent below.
    sessionReady = true;
    attempt = 0;
    setStatus("online");
    paging = false; // a new socket: a page asked for on the old one is asked for again from the watermark
    if (resumeFrom !== null) send({ type: "resume", after_seq: resumeFrom });
    flushOutbox();
    updateEmpty();
    scrollToEnd(true);
  }

  function onResumed(f) {
    // The page of a resume has arrived: every message the visitor may see with a seq in (after_seq, last_seq]
    // was in it (seqs missing from it are agents' notes), so the watermark moves past them. When the server
    // says `more`, the next page is asked for from where this one ended. (Older servers send no `resumed`.)
    if (typeof f.after_seq !== "number" || typeof f.last_seq !== "number") return;
    paging = false;
    if (watermark !== null && f.after_seq <= watermark && f.last_seq > watermark) {
      watermark = f.last_seq;
      while (seqSeen[watermark + 1]) watermark += 1;
    }
    if (f.more === true && f.last_seq > f.after_seq) paging = send({ type: "resume", after_seq: f.last_seq });
  }

  function onAck(f) {
    // The first message started the conversation: from null to its id, keeping what is shown.
    if (conversation === null && typeof f.conversation === "number") conversation = f.conversation;
    var idx = inflight.indexOf(f.client_id);
    if (idx >= 0) inflight.splice(idx, 1);
    var item = outboxItem(f.client_id);
    if (item) {
      if (item.node.parentNode) item.node.parentNode.removeChild(item.node);
      removeFromOutbox(item);
    }
    addMessage(f.message, false);
    renderChoices(); // the outbox may have emptied under a question already shown (an ack lost with a socket)
  }

  // Errors about a message that say "not now": it stays in the outbox and is sent again later. Any
  // other error naming a message refuses it for good: shown as not sent, with the reason, and never
  // sent again (re-sending a message the server cannot take made the widget reconnect in a loop).
  var TRANSIENT = { rate_limited: 1, unavailable: 1 };
  var REFUSED_REASON = {
    text_too_long: t("reasonTooLong"), empty_text: t("reasonEmpty"), invalid_text: t("reasonInvalidText"),
    invalid_client_id: t("reasonInvalidId"), conversation_closed: t("reasonClosed")
  };

  function onError(f) {
    var code = typeof f.code === "string" ? f.code : "";
    var detail = typeof f.detail === "string" ? f.detail : "";
    if (code === "identity_required" || code === "invalid_identity") refusedIdentity = code; // a 4401 close follows
    if (code === "invalid_key" || code === "origin_not_allowed") {
      refuse(code === "invalid_key" ? CLOSE_BAD_KEY : CLOSE_BAD_ORIGIN);
      return;
    }
    // The server names the message it refuses by its client_id. An error naming none is about another
    // frame (a rate-limited resume or typing frame) and marks no message: one whose frame the server
    // could not read goes unacked, and the ack timer sends it again (MAX_DROPS times at most).
    var head = typeof f.client_id === "string" ? outboxItem(f.client_id) : null;
    if (head) {
      if (inflight.indexOf(head.client_id) >= 0) inflight.splice(inflight.indexOf(head.client_id), 1);
      clearTimeout(ackTimers[head.client_id]);
    }
    if (TRANSIENT[code]) {
      showError(t(code === "rate_limited" ? "errorRateLimited" : "errorUnavailable"));
      if (head) markPending(head, t("waitingSend"));
      var wait = typeof f.retry_after === "number" && f.retry_after > 0 ? Math.min(f.retry_after, 60) * 1000
        : code === "rate_limited" ? RATE_RETRY_MS : UNAVAILABLE_RETRY_MS;
      clearTimeout(rateTimer);
      rateTimer = setTimeout(flushOutbox, wait);
      return;
    }
    if (head && !head.failed) markFailed(head, REFUSED_REASON[code] || detail.slice(0, 200) || code);
    if (code === "invalid_email" && contactPending) {
      contactFailed(t("contactInvalid"));
      return;
    }
    if ((code === "invalid_state" || code === "invalid_rating") && csatPending) {
      csatFailed();
      showError(t(code === "invalid_state" ? "errorCantRate" : "errorRating"));
      return;
    }
    var polite = { text_too_long: "errorTooLong", empty_text: "errorEmpty", message_not_found: "errorRating" }[code];
    showError(polite ? t(polite) : detail ? t("errorDetail", { detail: detail }) : t("errorGeneric"));
  }

  // --- open, close, keyboard ---

  function open() {
    if (isOpen) return;
    isOpen = true;
    panel.hidden = false;
    ui.setAttribute("data-open", "true");
    bubble.setAttribute("aria-expanded", "true");
    unread = 0;
    renderBadge();
    bubble.setAttribute("aria-label", t("close"));
    connect();
    fitViewport();
    scrollToEnd(true);
    (input.disabled ? closeBtn : input).focus();
  }

  function close() {
    if (!isOpen) return;
    isOpen = false;
    panel.hidden = true;
    ui.setAttribute("data-open", "false");
    bubble.setAttribute("aria-expanded", "false");
    renderBadge();
    fitViewport();
    bubble.focus();
  }

  function autosize() {
    var stick = pinned; // measuring at height auto briefly lengthens the list, which would unpin it
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
    if (stick) scrollToEnd(true);
  }

  function fitViewport() {
    // Full screen on a phone whose keyboard overlays the page (the layout viewport keeps its
    // height, only the visual one shrinks): fit the panel to what is visible, header included.
    var vv = window.visualViewport;
    var overlaid = vv && isOpen && fullScreen.matches && Math.abs(vv.scale - 1) < 0.01 &&
      vv.height < window.innerHeight - 1;
    panel.style.top = overlaid ? vv.offsetTop + "px" : "";
    panel.style.height = overlaid ? vv.height + "px" : "";
  }

  bubble.addEventListener("click", function () { if (isOpen) close(); else open(); });
  closeBtn.addEventListener("click", close);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); input.focus(); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", function () { autosize(); visitorTyped(); });
  contactCard.addEventListener("submit", function (ev) { ev.preventDefault(); contactSubmit(); });
  csatButtons.forEach(function (b, i) {
    b.addEventListener("click", function () { csatSubmit(i + 1); });
    b.addEventListener("mouseenter", function () { if (!csatPending) lightStars(i + 1); });
    b.addEventListener("focus", function () { if (!csatPending) lightStars(i + 1); });
    b.addEventListener("mouseleave", function () { if (!csatPending) lightStars(chosenStars()); });
    b.addEventListener("blur", function () { if (!csatPending) lightStars(chosenStars()); });
  });
  list.addEventListener("scroll", function () { pinned = nearBottom(); }, { passive: true });
  if (window.ResizeObserver) new window.ResizeObserver(keepPinned).observe(list);
  else window.addEventListener("resize", keepPinned);
  var fullScreen = window.matchMedia ? window.matchMedia("(max-width: 480px)") : { matches: false };
  ui.addEventListener("keydown", function (ev) {
    if ((ev.key === "Escape" || ev.key === "Esc") && isOpen) { ev.preventDefault(); close(); return; }
    if (ev.key !== "Tab" || !isOpen || !fullScreen.matches) return;
    // Full screen, the panel is all there is: keep Tab inside it.
    var focusable = Array.prototype.filter.call(
      panel.querySelectorAll("button, textarea, input, [tabindex='0']"),
      function (n) { return !n.disabled && n.offsetParent !== null; }
    );
    if (!focusable.length) return;
    var first = focusable[0];
    var last = focusable[focusable.length - 1];
    var active = root.activeElement || document.activeElement;
    if (ev.shiftKey && active === first) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && active === last) { ev.preventDefault(); first.focus(); }
  });

  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", fitViewport);
    window.visualViewport.addEventListener("scroll", fitViewport);
  }
  if (fullScreen.addEventListener) fullScreen.addEventListener("change", fitViewport);

  window.addEventListener("online", reconnectNow);
  window.addEventListener("offline", function () {
    if (!started || fatal) return;
    dropSocket();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });

  // --- start ---

  function mount() {
    document.body.appendChild(host);
    setStatus("idle");
    renderBadge();
    loadOutbox();
    // Returning visitors (or unsent messages) connect at once to get their replies;
    // new ones only when they open the chat, so idle page views create no visitors.
    if (token || outbox.length) connect();
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
