"""What the bot says around a store action, in the visitor's language: questions, confirmations, results.

The platform writes these (a store writes its knowledge and its own texts): en, es, de, fr, it, pt, English
for any other. A reply is composed from the action's result, so the state, carrier, tracking link and
dates the store returned are said as they are, never reworded by a model.
"""
from datetime import date

from chatbot import wording

TEXTS = {
    "en": {
        "ask_order_number": "What's your order number? You'll find it in your order confirmation e-mail.",
        "ask_order_number_again": "I still need your order number to find the order (it's in your confirmation e-mail).",
        "ask_email": "To keep your order private, what e-mail address did you use for it?",
        "ask_email_for": "What e-mail address did you use for order {number}?",
        "ask_email_again": "I still need the e-mail address you used for the order.",
        "ask_address": "What's the new shipping address? Please write it in one message: street and number, postcode, city and country.",
        "ask_address_again": "I still need the full new address: street and number, postcode, city and country.",
        "gave_up": "I need those details to find your order, so I'm passing you to a member of our team who can help.",
        "not_matched": "I couldn't find an order with that number and e-mail address. Please check both and send them again.",
        "limited": "I can't look up any more orders in this chat. A member of our team will help you.",
        "unreachable": "I can't reach our order system right now, so I'm passing you to a member of our team.",
        "confirm_cancel_order": "Do you want me to cancel order {number}{items}?",
        "confirm_change_address": "Do you want me to send order {number} to this address instead: {address}?",
        "confirm_start_return": "Do you want me to start a return for order {number}{items}?",
        "declined": "Okay, I haven't changed anything.",
        "yes_or_no": "Please answer yes or no.",
        "done_cancel_order": "Done: order {number} is cancelled. You'll get a confirmation by e-mail.",
        "done_change_address": "Done: order {number} will be sent to {address}.",
        "done_start_return": "Your return for order {number} has started.",
        "return_number": "Return number: {value}.",
        "return_label": "Print your return label here: {value}",
        "too_late_cancel_order": "Order {number} {state}, so it can't be cancelled any more.",
        "too_late_change_address": "Order {number} {state}, so its address can't be changed any more.",
        "too_early_start_return": "Order {number} {state}; you can start a return once it has been delivered.",
        "not_returnable": "Order {number} {state}, so it can't be returned.",
        "status": "Your order {number} {state}",
        "carrier": " with {value}",
        "tracking": "Tracking number: {value}.",
        "tracking_url": "Track it here: {value}",
        "expected": "Expected delivery: {value}.",
        "items": "It contains {value}.",
        "yes": "Yes", "no": "No",
        "states": {
            "pending": "has been received and is waiting to be processed",
            "processing": "is being prepared in our warehouse",
            "shipped": "has shipped",
            "in_transit": "is on its way",
            "out_for_delivery": "is out for delivery today",
            "delivered": "has been delivered",
            "cancelled": "was cancelled",
            "refunded": "was refunded",
            "returned": "was returned",
        },
        "date": "{month} {day}",
    },
    "es": {
        "ask_order_number": "¿Cuál es tu número de pedido? Lo encontrarás en el correo de confirmación del pedido.",
        "ask_order_number_again": "Todavía necesito tu número de pedido para encontrarlo (está en el correo de confirmación).",
        "ask_email": "Para proteger tu pedido, ¿qué dirección de correo electrónico usaste al hacerlo?",
        "ask_email_for": "¿Qué dirección de correo electrónico usaste para el pedido {number}?",
        "ask_email_again": "Todavía necesito la dirección de correo electrónico que usaste para el pedido.",
        "ask_address": "¿Cuál es la nueva dirección de envío? Escríbela en un solo mensaje: calle y número, código postal, ciudad y país.",
        "ask_address_again": "Todavía necesito la nueva dirección completa: calle y número, código postal, ciudad y país.",
        "gave_up": "Necesito esos datos para encontrar tu pedido, así que te paso con una persona de nuestro equipo.",
        "not_matched": "No he encontrado ningún pedido con ese número y ese correo. Compruébalos y envíamelos de nuevo.",
        "limited": "No puedo consultar más pedidos en este chat. Una persona de nuestro equipo te ayudará.",
        "unreachable": "Ahora mismo no puedo acceder a nuestro sistema de pedidos, así que te paso con una persona de nuestro equipo.",
        "confirm_cancel_order": "¿Quieres que cancele el pedido {number}{items}?",
        "confirm_change_address": "¿Quieres que envíe el pedido {number} a esta dirección: {address}?",
        "confirm_start_return": "¿Quieres que inicie una devolución del pedido {number}{items}?",
        "declined": "De acuerdo, no he cambiado nada.",
        "yes_or_no": "Por favor, responde sí o no.",
        "done_cancel_order": "Hecho: el pedido {number} está cancelado. Recibirás una confirmación por correo.",
        "done_change_address": "Hecho: el pedido {number} se enviará a {address}.",
        "done_start_return": "Se ha iniciado la devolución del pedido {number}.",
        "return_number": "Número de devolución: {value}.",
        "return_label": "Imprime tu etiqueta de devolución aquí: {value}",
        "too_late_cancel_order": "El pedido {number} {state}, así que ya no se puede cancelar.",
        "too_late_change_address": "El pedido {number} {state}, así que ya no se puede cambiar su dirección.",
        "too_early_start_return": "El pedido {number} {state}; podrás iniciar una devolución cuando se haya entregado.",
        "not_returnable": "El pedido {number} {state}, así que no se puede devolver.",
        "status": "Tu pedido {number} {state}",
        "carrier": " con {value}",
        "tracking": "Número de seguimiento: {value}.",
        "tracking_url": "Síguelo aquí: {value}",
        "expected": "Entrega prevista: {value}.",
        "items": "Contiene {value}.",
        "yes": "Sí", "no": "No",
        "states": {
            "pending": "se ha recibido y está pendiente de procesar",
            "processing": "se está preparando en nuestro almacén",
            "shipped": "ha sido enviado",
            "in_transit": "está en camino",
            "out_for_delivery": "está en reparto hoy",
            "delivered": "ha sido entregado",
            "cancelled": "fue cancelado",
            "refunded": "fue reembolsado",
            "returned": "fue devuelto",
        },
        "date": "{day} de {month}",
    },
    "de": {
        "ask_order_number": "Wie lautet deine Bestellnummer? Du findest sie in der Bestellbestätigung per E-Mail.",
        "ask_order_number_again": "Ich brauche noch deine Bestellnummer, um die Bestellung zu finden (sie steht in der Bestätigungs-E-Mail).",
        "ask_email": "Zum Schutz deiner Bestellung: Mit welcher E-Mail-Adresse hast du bestellt?",
        "ask_email_for": "Mit welcher E-Mail-Adresse hast du die Bestellung {number} aufgegeben?",
        "ask_email_again": "Ich brauche noch die E-Mail-Adresse, mit der du bestellt hast.",
        "ask_address": "Wie lautet die neue Lieferadresse? Bitte schreib sie in eine Nachricht: Straße und Hausnummer, PLZ, Ort und Land.",
        "ask_address_again": "Ich brauche noch die vollständige neue Adresse: Straße und Hausnummer, PLZ, Ort und Land.",
        "gave_up": "Ohne diese Angaben finde ich deine Bestellung nicht, deshalb übergebe ich dich an jemanden aus unserem Team.",
        "not_matched": "Ich habe keine Bestellung mit dieser Nummer und E-Mail-Adresse gefunden. Bitte prüfe beides und schick es noch einmal.",
        "limited": "Ich kann in diesem Chat keine weiteren Bestellungen nachschlagen. Jemand aus unserem Team hilft dir weiter.",
        "unreachable": "Ich erreiche unser Bestellsystem gerade nicht, deshalb übergebe ich dich an jemanden aus unserem Team.",
        "confirm_cancel_order": "Soll ich die Bestellung {number}{items} stornieren?",
        "confirm_change_address": "Soll ich die Bestellung {number} stattdessen an diese Adresse schicken: {address}?",
        "confirm_start_return": "Soll ich eine Rücksendung für die Bestellung {number}{items} starten?",
        "declined": "Okay, ich habe nichts geändert.",
        "yes_or_no": "Bitte antworte mit Ja oder Nein.",
        "done_cancel_order": "Erledigt: Die Bestellung {number} ist storniert. Du bekommst eine Bestätigung per E-Mail.",
        "done_change_address": "Erledigt: Die Bestellung {number} geht an {address}.",
        "done_start_return": "Die Rücksendung für die Bestellung {number} ist gestartet.",
        "return_number": "Rücksendenummer: {value}.",
        "return_label": "Dein Rücksendeetikett kannst du hier drucken: {value}",
        "too_late_cancel_order": "Die Bestellung {number} {state}, sie kann daher nicht mehr storniert werden.",
        "too_late_change_address": "Die Bestellung {number} {state}, ihre Adresse kann daher nicht mehr geändert werden.",
        "too_early_start_return": "Die Bestellung {number} {state}; eine Rücksendung kannst du nach der Zustellung starten.",
        "not_returnable": "Die Bestellung {number} {state}, sie kann daher nicht zurückgesendet werden.",
        "status": "Deine Bestellung {number} {state}",
        "carrier": " mit {value}",
        "tracking": "Sendungsnummer: {value}.",
        "tracking_url": "Hier kannst du sie verfolgen: {value}",
        "expected": "Voraussichtliche Zustellung: {value}.",
        "items": "Sie enthält {value}.",
        "yes": "Ja", "no": "Nein",
        "states": {
            "pending": "ist eingegangen und wartet auf die Bearbeitung",
            "processing": "wird in unserem Lager vorbereitet",
            "shipped": "wurde versandt",
            "in_transit": "ist unterwegs",
            "out_for_delivery": "wird heute zugestellt",
            "delivered": "wurde zugestellt",
            "cancelled": "wurde storniert",
            "refunded": "wurde erstattet",
            "returned": "wurde zurückgesendet",
        },
        "date": "{day}. {month}",
    },
    "fr": {
        "ask_order_number": "Quel est votre numéro de commande ? Vous le trouverez dans l'e-mail de confirmation de commande.",
        "ask_order_number_again": "J'ai encore besoin de votre numéro de commande pour la retrouver (il figure dans l'e-mail de confirmation).",
        "ask_email": "Pour protéger votre commande, quelle adresse e-mail avez-vous utilisée pour la passer ?",
        "ask_email_for": "Quelle adresse e-mail avez-vous utilisée pour la commande {number} ?",
        "ask_email_again": "J'ai encore besoin de l'adresse e-mail utilisée pour la commande.",
        "ask_address": "Quelle est la nouvelle adresse de livraison ? Écrivez-la en un seul message : numéro et rue, code postal, ville et pays.",
        "ask_address_again": "J'ai encore besoin de la nouvelle adresse complète : numéro et rue, code postal, ville et pays.",
        "gave_up": "J'ai besoin de ces informations pour retrouver votre commande, je vous passe donc à un membre de notre équipe.",
        "not_matched": "Je n'ai trouvé aucune commande avec ce numéro et cette adresse e-mail. Vérifiez-les et renvoyez-les.",
        "limited": "Je ne peux plus consulter de commandes dans ce chat. Un membre de notre équipe va vous aider.",
        "unreachable": "Je n'arrive pas à joindre notre système de commandes pour le moment, je vous passe donc à un membre de notre équipe.",
        "confirm_cancel_order": "Voulez-vous que j'annule la commande {number}{items} ?",
        "confirm_change_address": "Voulez-vous que j'envoie plutôt la commande {number} à cette adresse : {address} ?",
        "confirm_start_return": "Voulez-vous que je lance un retour pour la commande {number}{items} ?",
        "declined": "D'accord, je n'ai rien changé.",
        "yes_or_no": "Répondez par oui ou par non, s'il vous plaît.",
        "done_cancel_order": "C'est fait : la commande {number} est annulée. Vous recevrez une confirmation par e-mail.",
        "done_change_address": "C'est fait : la commande {number} sera envoyée à {address}.",
        "done_start_return": "Le retour de la commande {number} est lancé.",
        "return_number": "Numéro de retour : {value}.",
        "return_label": "Imprimez votre étiquette de retour ici : {value}",
        "too_late_cancel_order": "La commande {number} {state}, elle ne peut donc plus être annulée.",
        "too_late_change_address": "La commande {number} {state}, son adresse ne peut donc plus être modifiée.",
        "too_early_start_return": "La commande {number} {state} ; vous pourrez lancer un retour une fois qu'elle aura été livrée.",
        "not_returnable": "La commande {number} {state}, elle ne peut donc pas être retournée.",
        "status": "Votre commande {number} {state}",
        "carrier": " avec {value}",
        "tracking": "Numéro de suivi : {value}.",
        "tracking_url": "Suivez-la ici : {value}",
        "expected": "Livraison prévue : {value}.",
        "items": "Elle contient {value}.",
        "yes": "Oui", "no": "Non",
        "states": {
            "pending": "a été reçue et attend d'être traitée",
            "processing": "est en préparation dans notre entrepôt",
            "shipped": "a été expédiée",
            "in_transit": "est en route",
            "out_for_delivery": "est en cours de livraison aujourd'hui",
            "delivered": "a été livrée",
            "cancelled": "a été annulée",
            "refunded": "a été remboursée",
            "returned": "a été retournée",
        },
        "date": "{day} {month}",
    },
    "it": {
        "ask_order_number": "Qual è il tuo numero d'ordine? Lo trovi nell'e-mail di conferma dell'ordine.",
        "ask_order_number_again": "Mi serve ancora il numero d'ordine per trovarlo (è nell'e-mail di conferma).",
        "ask_email": "Per proteggere il tuo ordine, quale indirizzo e-mail hai usato per farlo?",
        "ask_email_for": "Quale indirizzo e-mail hai usato per l'ordine {number}?",
        "ask_email_again": "Mi serve ancora l'indirizzo e-mail che hai usato per l'ordine.",
        "ask_address": "Qual è il nuovo indirizzo di spedizione? Scrivilo in un solo messaggio: via e numero civico, CAP, città e paese.",
        "ask_address_again": "Mi serve ancora il nuovo indirizzo completo: via e numero civico, CAP, città e paese.",
        "gave_up": "Senza questi dati non trovo il tuo ordine, quindi ti passo a una persona del nostro team.",
        "not_matched": "Non ho trovato ordini con quel numero e quell'indirizzo e-mail. Controllali e inviali di nuovo.",
        "limited": "Non posso cercare altri ordini in questa chat. Una persona del nostro team ti aiuterà.",
        "unreachable": "Al momento non riesco a raggiungere il nostro sistema ordini, quindi ti passo a una persona del nostro team.",
        "confirm_cancel_order": "Vuoi che annulli l'ordine {number}{items}?",
        "confirm_change_address": "Vuoi che spedisca l'ordine {number} a questo indirizzo: {address}?",
        "confirm_start_return": "Vuoi che avvii un reso per l'ordine {number}{items}?",
        "declined": "D'accordo, non ho cambiato nulla.",
        "yes_or_no": "Rispondi sì o no, per favore.",
        "done_cancel_order": "Fatto: l'ordine {number} è annullato. Riceverai una conferma via e-mail.",
        "done_change_address": "Fatto: l'ordine {number} sarà spedito a {address}.",
        "done_start_return": "Il reso dell'ordine {number} è stato avviato.",
        "return_number": "Numero di reso: {value}.",
        "return_label": "Stampa l'etichetta di reso qui: {value}",
        "too_late_cancel_order": "L'ordine {number} {state}, quindi non può più essere annullato.",
        "too_late_change_address": "L'ordine {number} {state}, quindi il suo indirizzo non può più essere cambiato.",
        "too_early_start_return": "L'ordine {number} {state}; potrai avviare un reso dopo la consegna.",
        "not_returnable": "L'ordine {number} {state}, quindi non può essere reso.",
        "status": "Il tuo ordine {number} {state}",
        "carrier": " con {value}",
        "tracking": "Numero di tracciamento: {value}.",
        "tracking_url": "Seguilo qui: {value}",
        "expected": "Consegna prevista: {value}.",
        "items": "Contiene {value}.",
        "yes": "Sì", "no": "No",
        "states": {
            "pending": "è stato ricevuto ed è in attesa di elaborazione",
            "processing": "è in preparazione nel nostro magazzino",
            "shipped": "è stato spedito",
            "in_transit": "è in viaggio",
            "out_for_delivery": "è in consegna oggi",
            "delivered": "è stato consegnato",
            "cancelled": "è stato annullato",
            "refunded": "è stato rimborsato",
            "returned": "è stato reso",
        },
        "date": "{day} {month}",
    },
    "pt": {
        "ask_order_number": "Qual é o número da sua encomenda? Está no e-mail de confirmação da encomenda.",
        "ask_order_number_again": "Ainda preciso do número da encomenda para a encontrar (está no e-mail de confirmação).",
        "ask_email": "Para proteger a sua encomenda, que endereço de e-mail usou para a fazer?",
        "ask_email_for": "Que endereço de e-mail usou na encomenda {number}?",
        "ask_email_again": "Ainda preciso do endereço de e-mail que usou na encomenda.",
        "ask_address": "Qual é a nova morada de entrega? Escreva-a numa só mensagem: rua e número, código postal, cidade e país.",
        "ask_address_again": "Ainda preciso da nova morada completa: rua e número, código postal, cidade e país.",
        "gave_up": "Preciso desses dados para encontrar a sua encomenda, por isso vou passá-lo a alguém da nossa equipa.",
        "not_matched": "Não encontrei nenhuma encomenda com esse número e esse e-mail. Verifique-os e envie-os de novo.",
        "limited": "Não posso consultar mais encomendas neste chat. Alguém da nossa equipa vai ajudá-lo.",
        "unreachable": "De momento não consigo aceder ao nosso sistema de encomendas, por isso vou passá-lo a alguém da nossa equipa.",
        "confirm_cancel_order": "Quer que cancele a encomenda {number}{items}?",
        "confirm_change_address": "Quer que envie a encomenda {number} para esta morada: {address}?",
        "confirm_start_return": "Quer que inicie uma devolução da encomenda {number}{items}?",
        "declined": "Está bem, não alterei nada.",
        "yes_or_no": "Responda sim ou não, por favor.",
        "done_cancel_order": "Feito: a encomenda {number} está cancelada. Vai receber uma confirmação por e-mail.",
        "done_change_address": "Feito: a encomenda {number} será enviada para {address}.",
        "done_start_return": "A devolução da encomenda {number} foi iniciada.",
        "return_number": "Número de devolução: {value}.",
        "return_label": "Imprima a etiqueta de devolução aqui: {value}",
        "too_late_cancel_order": "A encomenda {number} {state}, por isso já não pode ser cancelada.",
        "too_late_change_address": "A encomenda {number} {state}, por isso a morada já não pode ser alterada.",
        "too_early_start_return": "A encomenda {number} {state}; pode iniciar uma devolução depois de ser entregue.",
        "not_returnable": "A encomenda {number} {state}, por isso não pode ser devolvida.",
        "status": "A sua encomenda {number} {state}",
        "carrier": " com {value}",
        "tracking": "Número de seguimento: {value}.",
        "tracking_url": "Acompanhe-a aqui: {value}",
        "expected": "Entrega prevista: {value}.",
        "items": "Contém {value}.",
        "yes": "Sim", "no": "Não",
        "states": {
            "pending": "foi recebida e aguarda processamento",
            "processing": "está a ser preparada no nosso armazém",
            "shipped": "foi enviada",
            "in_transit": "está a caminho",
            "out_for_delivery": "está em distribuição hoje",
            "delivered": "foi entregue",
            "cancelled": "foi cancelada",
            "refunded": "foi reembolsada",
            "returned": "foi devolvida",
        },
        "date": "{day} de {month}",
    },
}

# A typed answer to a confirmation question, in any of the languages (the buttons send the labels above).
YES_WORDS = frozenset({"yes", "y", "yeah", "yep", "sure", "ok", "okay", "confirm", "please do", "yes please",
                       "sí", "si", "claro", "vale", "ja", "jawohl", "genau", "oui", "d'accord", "sim", "certo"})
NO_WORDS = frozenset({"no", "n", "nope", "cancel", "don't", "no thanks", "nein", "non", "não", "nao"})


def _table(language: str) -> dict:
    return wording.words(TEXTS, language)


def text(name: str, language: str, **values) -> str:
    return _table(language)[name].format(**values)


def yes_no(message: str) -> bool | None:
    """True for a yes, False for a no, None for anything else ("yes, but ..." is not an answer)."""
    words = " ".join(message.lower().replace("!", " ").replace(".", " ").replace(",", " ").split())
    if words in YES_WORDS:
        return True
    if words in NO_WORDS:
        return False
    return None


def date_said(iso: str, language: str) -> str:
    try:
        day = date.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso
    return _table(language)["date"].format(day=day.day, month=wording.words(wording.MONTHS, language)[day.month - 1])


def _items(order: dict) -> str:
    return ", ".join(f"{i['quantity']} × {i['name']}" if i.get("quantity", 1) != 1 else i["name"]
                     for i in order.get("items", []))


def items_note(order: dict) -> str:
    """" (1 × Trail Jacket, Wool Socks)" for a confirmation question, "" when the store sent no items."""
    items = _items(order)
    return f" ({items})" if items else ""


def state_said(order: dict, language: str) -> str:
    return _table(language)["states"][order["state"]]


def order_status(order: dict, language: str) -> str:
    """The reply to "where is my order": its state, and where known carrier, tracking and expected date."""
    table = _table(language)
    first = table["status"].format(number=order["order_number"], state=table["states"][order["state"]])
    if order.get("carrier") and order["state"] in ("shipped", "in_transit", "out_for_delivery", "delivered"):
        first += table["carrier"].format(value=order["carrier"])
    lines = [first + "."]
    if order["state"] in ("shipped", "in_transit", "out_for_delivery"):
        if order.get("estimated_delivery"):
            lines.append(table["expected"].format(value=date_said(order["estimated_delivery"], language)))
        if order.get("tracking_number"):
            lines.append(table["tracking"].format(value=order["tracking_number"]))
        if order.get("tracking_url"):
            lines.append(table["tracking_url"].format(value=order["tracking_url"]))
    elif order["state"] in ("pending", "processing") and _items(order):
        lines.append(table["items"].format(value=_items(order)))
    return "\n".join(lines)


def write_done(action: str, order: dict, language: str, address: str = "") -> str:
    """The reply after a write action succeeded, from what the store returned."""
    table = _table(language)
    lines = [table[f"done_{action}"].format(number=order["order_number"],
                                             address=order.get("shipping_address") or address)]
    if action == "start_return":
        if order.get("instructions"):
            lines.append(order["instructions"])
        if order.get("return_number"):
            lines.append(table["return_number"].format(value=order["return_number"]))
        if order.get("return_label_url"):
            lines.append(table["return_label"].format(value=order["return_label_url"]))
    return "\n".join(lines)
