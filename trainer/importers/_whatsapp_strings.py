"""WhatsApp's own system and media strings, per app language: the data the importer recognises them by.

One entry per language WhatsApp ships an export in (en, de, es, fr, it, pt-BR, pt-PT, nl, tr, ru,
pl, id, hi, ar, ja, ko, zh). Each maps a category to the strings WhatsApp writes:

- `media`: Android's placeholder for any media left out of a "without media" export, written
  between angle brackets ("<Media omitted>"); listed without the brackets.
- `omitted`: iOS's per-type placeholders ("image omitted", behind a U+200E mark in the file), by
  media type: image, video, audio, sticker, gif, document, contact, view_once.
- `deleted`: "This message was deleted" / "You deleted this message" (with or without a final '.').
- `calls`: missed voice and video calls (iOS writes them as a message of the caller).
- `edited`: the suffix WhatsApp appends to an edited message, without its angle brackets.
- `location`: the label before a maps link ("location: https://maps.google.com/?q=…").
- `live_location`: the line a shared live location leaves.
- `poll`: the label that opens a poll ("POLL:" then the question and "OPTION: …" lines).
- `file_attached`: Android's "(file attached)" after a file name when media were exported.
- `system`: whole-line templates of service messages: the end-to-end encryption notice, group
  events (created, added, left, removed, joined by link, changed the subject, icon or
  description) and security-code changes. `{}` stands for a name or a quoted subject.

"null" (a message WhatsApp could not render, e.g. a poll vote or a view-once item on Android) is
language-independent and lives in `NULL_BODIES`.

`compile_tables()` turns this into the lookups `trainer.importers.whatsapp` uses: exact bodies
(folded: casefold + NFKC, surrounding marks and a final '.' removed) -> (kind, detail, language),
and one regex per category for prefixes, suffixes and templates.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

NULL_BODIES = ("null",)
MEDIA_TYPES = ("image", "video", "audio", "sticker", "gif", "document", "contact", "view_once")

STRINGS: dict[str, dict] = {
    "en": {
        "media": ["Media omitted", "Video message omitted", "View once voice message omitted", "View once photo omitted",
                  "View once video omitted"],
        "omitted": {"image": ["image omitted", "photo omitted"], "video": ["video omitted"], "audio": ["audio omitted"],
                    "sticker": ["sticker omitted"], "gif": ["GIF omitted"], "document": ["document omitted"],
                    "contact": ["Contact card omitted"], "view_once": ["View once photo", "View once video", "View once voice message"]},
        "deleted": ["This message was deleted", "You deleted this message"],
        "calls": ["Missed voice call", "Missed video call", "Missed group voice call", "Missed group video call"],
        "edited": ["This message was edited"],
        "location": ["location", "Location"],
        "live_location": ["live location shared", "Live location shared"],
        "poll": ["POLL"],
        "file_attached": ["file attached"],
        "system": ["Messages and calls are end-to-end encrypted. {}", "Messages to this group are now secured with end-to-end encryption. {}",
                   "Messages to this chat and calls are now secured with end-to-end encryption. {}", "You were added", "{} created this group",
                   "{} created group {}", "You created group {}", "{} added {}", "You added {}", "{} left", "You left",
                   "{} removed {}", "You removed {}", "{} joined using this group's invite link", "{} changed the subject from {} to {}",
                   "{} changed the subject to {}", "{} changed this group's icon", "{} deleted this group's icon", "{} changed the group description",
                   "{} deleted the group description", "Your security code with {} changed. {}", "{} changed their phone number to a new number. {}",
                   "{} changed to {}", "You're now an admin", "{} is now an admin", "Waiting for this message. {}", "This chat is with a business account. {}",
                   "Disappearing messages were turned off. {}", "{} turned on disappearing messages. {}", "{} turned off disappearing messages."],
    },
    "de": {
        "media": ["Medien ausgeschlossen", "Medien weggelassen", "Videonachricht weggelassen"],
        "omitted": {"image": ["Bild weggelassen", "Foto weggelassen"], "video": ["Video weggelassen"], "audio": ["Audio weggelassen"],
                    "sticker": ["Sticker weggelassen"], "gif": ["GIF weggelassen"], "document": ["Dokument weggelassen"],
                    "contact": ["Kontaktkarte ausgelassen", "Kontaktkarte weggelassen"],
                    "view_once": ["Einmalansicht-Foto", "Einmalansicht-Video"]},
        "deleted": ["Diese Nachricht wurde gelöscht", "Du hast diese Nachricht gelöscht"],
        "calls": ["Verpasster Sprachanruf", "Verpasster Videoanruf", "Verpasster Gruppensprachanruf", "Verpasster Gruppenvideoanruf"],
        "edited": ["Diese Nachricht wurde bearbeitet"],
        "location": ["Standort"],
        "live_location": ["Live-Standort geteilt"],
        "poll": ["UMFRAGE"],
        "file_attached": ["Datei angehängt"],
        "system": ["Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt. {}", "{} hat die Gruppe {} erstellt", "Du hast die Gruppe {} erstellt",
                   "Nachrichten, die du in diesem Chat sendest, sowie Anrufe, sind jetzt mit Ende-zu-Ende-Verschlüsselung geschützt. {}",
                   "Nachrichten an diese Gruppe sind jetzt mit Ende-zu-Ende-Verschlüsselung geschützt. {}", "{} hat die Gruppe erstellt",
                   "{} hat {} hinzugefügt", "Du hast {} hinzugefügt", "{} hat die Gruppe verlassen", "Du hast die Gruppe verlassen",
                   "{} hat {} entfernt", "Du hast {} entfernt", "{} hat dich entfernt", "{} wurde entfernt", "{} hat dich hinzugefügt",
                   "{} wurde hinzugefügt", "{} hat zu {} gewechselt", "{} ist beigetreten", "{} ist der Gruppe über den Einladungslink beigetreten", "{} ist über den Einladungslink dieser Gruppe beigetreten",
                   "{} hat den Betreff von {} zu {} geändert", "{} hat den Betreff zu {} geändert", "{} hat das Gruppenbild geändert",
                   "{} hat die Gruppenbeschreibung geändert", "Deine Sicherheitsnummer für {} hat sich geändert. {}",
                   "{} hat eine neue Telefonnummer. {}", "Du bist jetzt ein Admin", "{} ist jetzt Admin"],
    },
    "es": {
        "media": ["Multimedia omitido", "Archivo omitido", "Media omitida"],
        "omitted": {"image": ["imagen omitida"], "video": ["video omitido", "vídeo omitido"], "audio": ["audio omitido"],
                    "sticker": ["sticker omitido"], "gif": ["GIF omitido"], "document": ["documento omitido"],
                    "contact": ["tarjeta de contacto omitida"], "view_once": ["Foto de visualización única", "Video de visualización única"]},
        "deleted": ["Se eliminó este mensaje", "Eliminaste este mensaje", "Este mensaje fue eliminado"],
        "calls": ["Llamada perdida", "Llamada de voz perdida", "Videollamada perdida"],
        "edited": ["Se editó este mensaje", "Mensaje editado"],
        "location": ["ubicación", "Ubicación"],
        "live_location": ["ubicación en tiempo real compartida", "Ubicación en tiempo real compartida"],
        "poll": ["ENCUESTA"],
        "file_attached": ["archivo adjunto"],
        "system": ["Los mensajes y las llamadas están cifrados de extremo a extremo. {}", "{} creó el grupo {}", "Creaste el grupo {}",
                   "{} añadió a {}", "{} agregó a {}", "Añadiste a {}", "{} salió del grupo", "Saliste del grupo", "{} eliminó a {}",
                   "{} se unió usando el enlace de invitación de este grupo", "{} cambió el asunto de {} a {}", "{} cambió el asunto a {}",
                   "{} cambió el ícono de este grupo", "{} cambió el icono de este grupo", "{} cambió la descripción del grupo",
                   "Tu código de seguridad con {} cambió. {}", "Ahora eres admin. del grupo"],
    },
    "fr": {
        "media": ["Médias omis", "Fichier omis"],
        "omitted": {"image": ["image absente", "image omise"], "video": ["vidéo absente", "vidéo omise"], "audio": ["audio omis", "audio absent"],
                    "sticker": ["sticker omis", "autocollant omis"], "gif": ["GIF retiré", "GIF omis"], "document": ["document omis"],
                    "contact": ["carte de contact omise", "fiche contact omise"], "view_once": ["Photo à vue unique", "Vidéo à vue unique"]},
        "deleted": ["Ce message a été supprimé", "Vous avez supprimé ce message"],
        "calls": ["Appel vocal manqué", "Appel vidéo manqué"],
        "edited": ["Ce message a été modifié", "Message modifié"],
        "location": ["position", "Position", "localisation"],
        "live_location": ["position en direct partagée", "Position en direct partagée"],
        "poll": ["SONDAGE"],
        "file_attached": ["fichier joint"],
        "system": ["Les messages et les appels sont chiffrés de bout en bout. {}", "{} a créé le groupe {}", "Vous avez créé le groupe {}",
                   "{} a ajouté {}", "Vous avez ajouté {}", "{} est parti", "{} est parti(e)", "Vous êtes parti(e)", "{} a retiré {}",
                   "{} a rejoint le groupe via le lien d'invitation", "{} a modifié le sujet de {} en {}", "{} a changé le sujet en {}",
                   "{} a changé l'icône de ce groupe", "{} a modifié la description du groupe", "Votre code de sécurité avec {} a changé. {}",
                   "Vous êtes désormais admin"],
    },
    "it": {
        "media": ["Media omessi", "File omesso"],
        "omitted": {"image": ["immagine omessa"], "video": ["video omesso"], "audio": ["audio omesso"], "sticker": ["sticker omesso"],
                    "gif": ["GIF omessa", "GIF omesso"], "document": ["documento omesso"], "contact": ["scheda contatto omessa"],
                    "view_once": ["Foto visualizzabile una volta", "Video visualizzabile una volta"]},
        "deleted": ["Questo messaggio è stato eliminato", "Hai eliminato questo messaggio"],
        "calls": ["Chiamata vocale persa", "Videochiamata persa"],
        "edited": ["Questo messaggio è stato modificato", "Messaggio modificato"],
        "location": ["posizione", "Posizione"],
        "live_location": ["posizione in tempo reale condivisa", "Posizione in tempo reale condivisa"],
        "poll": ["SONDAGGIO"],
        "file_attached": ["file allegato", "allegato"],
        "system": ["I messaggi e le chiamate sono crittografati end-to-end. {}", "{} ha creato il gruppo {}", "Hai creato il gruppo {}",
                   "{} ha aggiunto {}", "Hai aggiunto {}", "{} è uscito", "{} ha abbandonato", "Sei uscito", "{} ha rimosso {}",
                   "{} si è unito tramite il link d'invito a questo gruppo", "{} ha cambiato l'oggetto da {} a {}", "{} ha cambiato l'oggetto in {}",
                   "{} ha cambiato l'immagine di questo gruppo", "{} ha modificato la descrizione del gruppo",
                   "Il tuo codice di sicurezza con {} è cambiato. {}", "Ora sei un amministratore"],
    },
    "pt-BR": {
        "media": ["Arquivo de mídia oculto", "Mídia oculta", "Mídia omitida"],
        "omitted": {"image": ["imagem ocultada", "imagem omitida"], "video": ["vídeo omitido", "vídeo ocultado"],
                    "audio": ["áudio ocultado", "áudio omitido"], "sticker": ["figurinha omitida"], "gif": ["GIF omitido"],
                    "document": ["documento omitido"], "contact": ["cartão de contato omitido"],
                    "view_once": ["Foto de visualização única", "Vídeo de visualização única"]},
        "deleted": ["Esta mensagem foi apagada", "Você apagou esta mensagem", "Mensagem apagada"],
        "calls": ["Chamada de voz perdida", "Chamada de vídeo perdida"],
        "edited": ["Mensagem editada", "Esta mensagem foi editada"],
        "location": ["localização", "Localização"],
        "live_location": ["localização em tempo real compartilhada", "Localização em tempo real compartilhada"],
        "poll": ["ENQUETE"],
        "file_attached": ["arquivo anexado"],
        "system": ["As mensagens e as chamadas são protegidas com a criptografia de ponta a ponta. {}", "{} criou o grupo {}",
                   "Você criou o grupo {}", "{} adicionou {}", "Você adicionou {}", "{} saiu", "Você saiu", "{} removeu {}",
                   "{} entrou usando o link de convite deste grupo", "{} mudou o assunto de {} para {}", "{} mudou o assunto para {}",
                   "{} mudou a imagem deste grupo", "{} mudou a descrição do grupo", "Seu código de segurança com {} mudou. {}",
                   "Você agora é admin"],
    },
    "pt-PT": {
        "media": ["Multimédia omitida", "Ficheiro multimédia omitido"],
        "omitted": {"image": ["imagem omitida"], "video": ["vídeo omitido"], "audio": ["áudio omitido"], "sticker": ["autocolante omitido"],
                    "gif": ["GIF omitido"], "document": ["documento omitido"], "contact": ["cartão de contacto omitido"],
                    "view_once": ["Fotografia de visualização única", "Vídeo de visualização única"]},
        "deleted": ["Esta mensagem foi eliminada", "Eliminou esta mensagem", "Apagou esta mensagem"],
        "calls": ["Chamada de voz perdida", "Videochamada perdida", "Chamada de vídeo perdida"],
        "edited": ["Esta mensagem foi editada", "Mensagem editada"],
        "location": ["localização", "Localização"],
        "live_location": ["localização em tempo real partilhada", "Localização em tempo real partilhada"],
        "poll": ["SONDAGEM"],
        "file_attached": ["ficheiro anexado"],
        "system": ["As mensagens e as chamadas estão encriptadas ponto a ponto. {}", "{} criou o grupo {}", "Criou o grupo {}",
                   "{} adicionou {}", "Adicionou {}", "{} saiu", "Saiu", "{} removeu {}", "{} entrou através da ligação de convite deste grupo",
                   "{} alterou o assunto de {} para {}", "{} alterou o ícone deste grupo", "{} alterou a descrição do grupo",
                   "O seu código de segurança com {} foi alterado. {}", "É agora administrador"],
    },
    "nl": {
        "media": ["Media weggelaten"],
        "omitted": {"image": ["afbeelding weggelaten"], "video": ["video weggelaten"], "audio": ["audio weggelaten"],
                    "sticker": ["sticker weggelaten"], "gif": ["GIF weggelaten"], "document": ["document weggelaten"],
                    "contact": ["contactkaart weggelaten"], "view_once": ["Eenmalige foto", "Eenmalige video"]},
        "deleted": ["Dit bericht is verwijderd", "Je hebt dit bericht verwijderd", "U heeft dit bericht verwijderd"],
        "calls": ["Gemiste spraakoproep", "Gemiste videogesprek", "Gemiste video-oproep"],
        "edited": ["Dit bericht is bewerkt", "Bericht bewerkt"],
        "location": ["locatie", "Locatie"],
        "live_location": ["live locatie gedeeld", "Live locatie gedeeld"],
        "poll": ["PEILING"],
        "file_attached": ["bestand bijgevoegd"],
        "system": ["Berichten en oproepen worden end-to-end versleuteld. {}", "{} heeft groep {} aangemaakt", "Je hebt groep {} aangemaakt",
                   "{} heeft {} toegevoegd", "Je hebt {} toegevoegd", "{} heeft de groep verlaten", "{} is vertrokken", "Je bent vertrokken",
                   "{} heeft {} verwijderd", "{} neemt deel via de uitnodigingslink van deze groep", "{} heeft het onderwerp gewijzigd van {} naar {}",
                   "{} heeft de afbeelding van deze groep gewijzigd", "{} heeft de groepsbeschrijving gewijzigd",
                   "Je beveiligingscode met {} is gewijzigd. {}", "Je bent nu beheerder"],
    },
    "tr": {
        "media": ["Medya dahil edilmedi", "Medya atlandı"],
        "omitted": {"image": ["görüntü dahil edilmedi", "fotoğraf dahil edilmedi"], "video": ["video dahil edilmedi"],
                    "audio": ["ses dahil edilmedi"], "sticker": ["çıkartma dahil edilmedi"], "gif": ["GIF dahil edilmedi"],
                    "document": ["belge dahil edilmedi"], "contact": ["kişi kartı dahil edilmedi"],
                    "view_once": ["Tek seferlik fotoğraf", "Tek seferlik video"]},
        "deleted": ["Bu mesaj silindi", "Bu mesajı sildiniz", "Bu mesajı sildin"],
        "calls": ["Cevapsız sesli arama", "Cevapsız görüntülü arama"],
        "edited": ["Bu mesaj düzenlendi", "Düzenlendi"],
        "location": ["konum", "Konum"],
        "live_location": ["canlı konum paylaşıldı", "Canlı konum paylaşıldı"],
        "poll": ["ANKET"],
        "file_attached": ["dosya ekli"],
        "system": ["Mesajlar ve aramalar uçtan uca şifrelidir. {}", "{} {} grubunu oluşturdu", "{} grubunu oluşturdunuz",
                   "{}, {} kişisini ekledi", "{} {} kişisini ekledi", "{} kişisini eklediniz", "{} gruptan ayrıldı", "Gruptan ayrıldınız",
                   "{}, {} kişisini çıkardı", "{} bu grubun davet bağlantısını kullanarak katıldı", "{} konuyu {} olarak değiştirdi",
                   "{} bu grubun simgesini değiştirdi", "{} grup açıklamasını değiştirdi", "{} ile güvenlik kodunuz değişti. {}",
                   "Artık yöneticisiniz"],
    },
    "ru": {
        "media": ["Без медиафайлов", "Медиафайл отсутствует", "Медиа пропущено"],
        "omitted": {"image": ["изображение отсутствует"], "video": ["видео отсутствует"], "audio": ["аудиофайл отсутствует", "аудио отсутствует"],
                    "sticker": ["стикер отсутствует"], "gif": ["GIF отсутствует"], "document": ["документ отсутствует"],
                    "contact": ["карточка контакта отсутствует"], "view_once": ["Фото для однократного просмотра", "Видео для однократного просмотра"]},
        "deleted": ["Данное сообщение удалено", "Вы удалили данное сообщение", "Это сообщение удалено", "Вы удалили это сообщение"],
        "calls": ["Пропущенный аудиозвонок", "Пропущенный видеозвонок"],
        "edited": ["Сообщение изменено", "Это сообщение было изменено"],
        "location": ["геопозиция", "Геопозиция", "местоположение"],
        "live_location": ["трансляция геоданных", "Трансляция геоданных"],
        "poll": ["ОПРОС"],
        "file_attached": ["файл прикреплен", "файл прикреплён"],
        "system": ["Сообщения и звонки защищены сквозным шифрованием. {}", "{} создал(-а) группу {}", "{} создал группу {}", "Вы создали группу {}",
                   "{} добавил(-а) {}", "{} добавил {}", "Вы добавили {}", "{} вышел(-ла) из группы", "{} вышел из группы", "Вы вышли из группы",
                   "{} удалил(-а) {}", "{} присоединился(-ась) по ссылке-приглашению в эту группу", "{} изменил(-а) тему с {} на {}",
                   "{} изменил(-а) изображение этой группы", "{} изменил(-а) описание группы", "Ваш код безопасности для {} изменился. {}",
                   "Теперь вы администратор"],
    },
    "pl": {
        "media": ["pominięto multimedia", "Pominięto multimedia"],
        "omitted": {"image": ["pominięto obraz", "obraz pominięty"], "video": ["pominięto wideo", "wideo pominięte"],
                    "audio": ["pominięto audio", "audio pominięte"], "sticker": ["pominięto naklejkę", "naklejka pominięta"],
                    "gif": ["pominięto GIF", "GIF pominięty"], "document": ["pominięto dokument", "dokument pominięty"],
                    "contact": ["pominięto wizytówkę", "wizytówka pominięta"], "view_once": ["Zdjęcie do jednorazowego wyświetlenia"]},
        "deleted": ["Ta wiadomość została usunięta", "Usunięto tę wiadomość", "Usunąłeś tę wiadomość", "Wiadomość usunięta"],
        "calls": ["Nieodebrane połączenie głosowe", "Nieodebrane połączenie wideo"],
        "edited": ["Edytowano tę wiadomość", "Ta wiadomość została edytowana"],
        "location": ["lokalizacja", "Lokalizacja"],
        "live_location": ["udostępniona lokalizacja na żywo", "Udostępniono lokalizację na żywo"],
        "poll": ["ANKIETA"],
        "file_attached": ["załączono plik"],
        "system": ["Wiadomości i połączenia są szyfrowane end-to-end. {}", "{} utworzył(a) grupę {}", "{} utworzył grupę {}", "Grupa {} została utworzona",
                   "{} dodał(a) {}", "{} dodał {}", "Dodano {}", "{} opuścił(a) grupę", "{} opuścił grupę", "Opuszczono grupę", "{} usunął(-ęła) {}",
                   "{} dołączył(a) przez link z zaproszeniem do tej grupy", "{} zmienił(a) temat z {} na {}", "{} zmienił(a) ikonę tej grupy",
                   "{} zmienił(a) opis grupy", "Twój kod zabezpieczenia z {} zmienił się. {}", "Jesteś teraz administratorem"],
    },
    "id": {
        "media": ["Media tidak disertakan"],
        "omitted": {"image": ["gambar tidak disertakan"], "video": ["video tidak disertakan"], "audio": ["audio tidak disertakan"],
                    "sticker": ["stiker tidak disertakan"], "gif": ["GIF tidak disertakan"], "document": ["dokumen tidak disertakan"],
                    "contact": ["kartu kontak tidak disertakan"], "view_once": ["Foto sekali lihat", "Video sekali lihat"]},
        "deleted": ["Pesan ini telah dihapus", "Anda menghapus pesan ini"],
        "calls": ["Panggilan suara tak terjawab", "Panggilan video tak terjawab"],
        "edited": ["Pesan ini telah diedit", "Pesan ini diedit"],
        "location": ["lokasi", "Lokasi"],
        "live_location": ["lokasi terkini dibagikan", "Lokasi terkini dibagikan"],
        "poll": ["POLING"],
        "file_attached": ["file terlampir"],
        "system": ["Pesan dan panggilan terenkripsi secara end-to-end. {}", "{} membuat grup {}", "Anda membuat grup {}",
                   "{} menambahkan {}", "Anda menambahkan {}", "{} keluar", "Anda keluar", "{} mengeluarkan {}",
                   "{} bergabung menggunakan tautan undangan grup ini", "{} mengubah subjek dari {} ke {}", "{} mengubah subjek menjadi {}",
                   "{} mengubah ikon grup ini", "{} mengubah deskripsi grup", "Kode keamanan Anda dengan {} telah berubah. {}",
                   "Anda sekarang admin"],
    },
    "hi": {
        "media": ["मीडिया के बिना", "मीडिया हटाया गया"],
        "omitted": {"image": ["इमेज हटाई गई", "फ़ोटो हटाई गई"], "video": ["वीडियो हटाया गया"], "audio": ["ऑडियो हटाया गया"],
                    "sticker": ["स्टिकर हटाया गया"], "gif": ["GIF हटाया गया"], "document": ["डॉक्यूमेंट हटाया गया"],
                    "contact": ["संपर्क कार्ड हटाया गया"], "view_once": ["एक बार देखी जा सकने वाली फ़ोटो"]},
        "deleted": ["यह मैसेज हटा दिया गया था", "आपने यह मैसेज हटा दिया", "यह संदेश हटा दिया गया था", "आपने यह संदेश हटाया"],
        "calls": ["मिस्ड वॉइस कॉल", "मिस्ड वीडियो कॉल"],
        "edited": ["यह मैसेज एडिट किया गया था", "यह मैसेज एडिट किया गया"],
        "location": ["लोकेशन", "स्थान"],
        "live_location": ["लाइव लोकेशन शेयर की गई"],
        "poll": ["पोल"],
        "file_attached": ["फ़ाइल अटैच की गई"],
        "system": ["मैसेज और कॉल एंड-टू-एंड एन्क्रिप्टेड हैं. {}", "मैसेज और कॉल एंड-टू-एंड एन्क्रिप्टेड हैं। {}", "{} ने ग्रुप {} बनाया",
                   "आपने ग्रुप {} बनाया", "{} ने {} को जोड़ा", "आपने {} को जोड़ा", "{} ने ग्रुप छोड़ दिया", "{} चले गए", "आपने ग्रुप छोड़ दिया",
                   "{} ने {} को हटाया", "{} इस ग्रुप के इनवाइट लिंक से जुड़े", "{} ने विषय {} से बदलकर {} कर दिया", "{} ने इस ग्रुप का आइकन बदला",
                   "{} ने ग्रुप का विवरण बदला", "{} के साथ आपका सुरक्षा कोड बदल गया है. {}", "अब आप एडमिन हैं"],
    },
    "ar": {
        "media": ["تم استبعاد الوسائط", "الوسائط غير مضمنة"],
        "omitted": {"image": ["تم استبعاد الصورة", "الصورة غير مضمنة"], "video": ["تم استبعاد الفيديو", "الفيديو غير مضمن"],
                    "audio": ["تم استبعاد الصوت", "الصوت غير مضمن"], "sticker": ["تم استبعاد الملصق", "الملصق غير مضمن"],
                    "gif": ["تم استبعاد صورة GIF", "GIF غير مضمن"], "document": ["تم استبعاد المستند", "المستند غير مضمن"],
                    "contact": ["تم استبعاد بطاقة جهة الاتصال", "بطاقة جهة الاتصال غير مضمنة"], "view_once": ["صورة للعرض مرة واحدة"]},
        "deleted": ["تم حذف هذه الرسالة", "لقد حذفت هذه الرسالة", "حذفت هذه الرسالة"],
        "calls": ["مكالمة صوتية فائتة", "مكالمة فيديو فائتة"],
        "edited": ["تم تعديل هذه الرسالة", "تم التعديل"],
        "location": ["الموقع", "موقع"],
        "live_location": ["تمت مشاركة الموقع المباشر"],
        "poll": ["استطلاع"],
        "file_attached": ["ملف مرفق"],
        "system": ["الرسائل والمكالمات مشفرة تماماً بين الطرفين. {}", "الرسائل والمكالمات مشفّرة تمامًا بين الطرفين. {}", "{} أنشأ المجموعة {}",
                   "أنشأت المجموعة {}", "{} أضاف {}", "أضفت {}", "{} غادر", "غادرت", "{} أزال {}", "{} انضم باستخدام رابط الدعوة لهذه المجموعة",
                   "{} غيّر الموضوع من {} إلى {}", "{} غيّر الموضوع إلى {}", "{} غيّر صورة هذه المجموعة", "{} غيّر وصف المجموعة",
                   "تغيّر رمز الأمان الخاص بك مع {}. {}", "أنت الآن مشرف"],
    },
    "ja": {
        "media": ["メディアは含まれていません", "メディアなし", "メディアを省略しました"],
        "omitted": {"image": ["画像は含まれていません", "画像を省略しました"], "video": ["動画は含まれていません", "動画を省略しました"],
                    "audio": ["音声は含まれていません", "音声を省略しました"], "sticker": ["スタンプは含まれていません", "ステッカーは含まれていません"],
                    "gif": ["GIFは含まれていません", "GIFを省略しました"], "document": ["ドキュメントは含まれていません", "書類は含まれていません"],
                    "contact": ["連絡先カードは含まれていません", "連絡先は含まれていません"], "view_once": ["1回表示の写真", "1回表示の動画"]},
        "deleted": ["このメッセージは削除されました", "メッセージを削除しました", "このメッセージを削除しました"],
        "calls": ["不在着信(音声通話)", "不在着信(ビデオ通話)", "音声通話の不在着信", "ビデオ通話の不在着信"],
        "edited": ["このメッセージは編集されました", "編集済み"],
        "location": ["位置情報", "場所"],
        "live_location": ["ライブ位置情報を共有しました", "位置情報を共有しました"],
        "poll": ["投票"],
        "file_attached": ["ファイル添付", "ファイルが添付されています"],
        "system": ["メッセージと通話はエンドツーエンドで暗号化されています。{}", "{}がグループ{}を作成しました", "グループ{}を作成しました",
                   "{}が{}を追加しました", "{}を追加しました", "{}が退出しました", "退出しました", "{}が{}を削除しました",
                   "{}がこのグループの招待リンクから参加しました", "{}がグループ名を{}から{}に変更しました", "{}がグループ名を{}に変更しました",
                   "{}がこのグループのアイコンを変更しました", "{}がグループの説明を変更しました", "{}とのセキュリティコードが変更されました。{}",
                   "管理者になりました"],
    },
    "ko": {
        "media": ["미디어 파일 생략", "미디어 파일 없음", "미디어 생략"],
        "omitted": {"image": ["사진 생략", "이미지 생략"], "video": ["동영상 생략"], "audio": ["오디오 생략", "음성 생략"], "sticker": ["스티커 생략"],
                    "gif": ["GIF 생략"], "document": ["문서 생략"], "contact": ["연락처 카드 생략", "연락처 생략"],
                    "view_once": ["한 번 보기 사진", "한 번 보기 동영상"]},
        "deleted": ["삭제된 메시지입니다", "메시지를 삭제했습니다", "이 메시지는 삭제되었습니다"],
        "calls": ["부재중 음성 통화", "부재중 영상 통화"],
        "edited": ["수정된 메시지입니다", "이 메시지는 수정되었습니다", "수정됨"],
        "location": ["위치"],
        "live_location": ["실시간 위치 공유됨", "실시간 위치를 공유했습니다"],
        "poll": ["투표"],
        "file_attached": ["파일 첨부됨"],
        "system": ["메시지와 전화는 종단간 암호화되어 보호됩니다. {}", "메시지와 통화는 종단간 암호화됩니다. {}", "{}님이 {} 그룹을 만들었습니다",
                   "{} 그룹을 만들었습니다", "{}님이 {}님을 추가했습니다", "{}님을 추가했습니다", "{}님이 나갔습니다", "나갔습니다",
                   "{}님이 {}님을 내보냈습니다", "{}님이 이 그룹의 초대 링크로 참여했습니다", "{}님이 그룹 제목을 {}에서 {}(으)로 변경했습니다",
                   "{}님이 그룹 제목을 {}(으)로 변경했습니다", "{}님이 이 그룹의 아이콘을 변경했습니다", "{}님이 그룹 설명을 변경했습니다",
                   "{}님과의 보안 코드가 변경되었습니다. {}", "이제 관리자입니다"],
    },
    "zh": {
        "media": ["省略影音内容", "媒体文件已省略", "省略媒体文件", "已忽略媒体"],
        "omitted": {"image": ["图片已忽略", "图片已省略", "圖片已略去"], "video": ["视频已忽略", "视频已省略", "影片已略去"],
                    "audio": ["音频已忽略", "音频已省略", "音訊已略去"], "sticker": ["贴图已忽略", "表情贴图已省略", "貼圖已略去"],
                    "gif": ["GIF 已忽略", "GIF已省略", "GIF 已略去"], "document": ["文档已忽略", "文件已省略", "文件已略去"],
                    "contact": ["联系人名片已忽略", "联系人卡片已省略", "聯絡人名片已略去"], "view_once": ["一次性查看照片", "一次性查看视频"]},
        "deleted": ["此消息已删除", "你删除了此消息", "您删除了此消息", "此訊息已刪除", "你已刪除此訊息"],
        "calls": ["语音通话未接", "视频通话未接", "未接语音通话", "未接视频通话", "未接語音通話", "未接視像通話"],
        "edited": ["此消息已编辑", "已编辑", "此訊息已編輯"],
        "location": ["位置"],
        "live_location": ["实时位置已共享", "已共享实时位置", "即時位置已分享"],
        "poll": ["投票"],
        "file_attached": ["已附加文件", "附件"],
        "system": ["消息和通话都进行端到端加密。{}", "消息和通话已进行端到端加密。{}", "訊息和通話均受端對端加密保護。{}", "{}创建了群组{}",
                   "你创建了群组{}", "{}添加了{}", "你添加了{}", "{}已退出", "你已退出", "{}移除了{}", "{}通过此群组的邀请链接加入",
                   "{}将群组名称从{}更改为{}", "{}将群组名称更改为{}", "{}更改了此群组的头像", "{}更改了群组描述", "你与{}的安全码已更改。{}",
                   "你现在是管理员"],
    },
}

LANGUAGES = tuple(STRINGS)
_MARKS = "\u200e\u200f\ufeff\u202a\u202b\u202c\u2068\u2069\u061c"


def fold_body(text: str) -> str:
    """The form bodies are compared in: NFKC, casefolded, marks and surrounding spaces/brackets/'.' trimmed."""
    t = unicodedata.normalize("NFKC", text).strip(_MARKS + " \u202f\u00a0").casefold()
    if t.startswith("<") and t.endswith(">"):
        t = t[1:-1].strip(_MARKS + " ")
    return t.rstrip("。.").strip(_MARKS + " ")


@dataclass(frozen=True)
class Tables:
    exact: dict[str, tuple[str, str, str]]      # folded body -> (kind 'media'|'system', detail, language)
    edited: re.Pattern                          # "<This message was edited>" at the end of a body
    prefixed: re.Pattern                        # "location: http…", "POLL:" at the start of a body
    prefix_kinds: dict[str, tuple[str, str]]    # folded label -> (detail, language)
    attached: re.Pattern                        # "NAME.ext (file attached)" in any language
    system: re.Pattern                          # whole-line service templates, any language
    system_languages: list[str]                 # group name -> language, for system's named groups


def template_regex(t: str) -> str:
    """A service template as a regex over folded text. The first `{}` is a person and never spans
    ": " (so "Anna: we left" is a message, not "{} left"); later ones (subjects) may."""
    parts = [re.escape(unicodedata.normalize("NFKC", p).casefold()).replace(r"\ ", r"\s") for p in t.split("{}")]
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        out += (r"(?:(?!:\s).)+?" if i == 0 else ".+?") + part
    return out


def compile_tables() -> Tables:
    exact: dict[str, tuple[str, str, str]] = {}
    edited, labels, attached, system, languages = set(), {}, set(), [], []
    for lang, table in STRINGS.items():
        for s in table["media"]:
            exact.setdefault(fold_body(s), ("media", "media", lang))
        for kind, strings in table["omitted"].items():
            for s in strings:
                exact.setdefault(fold_body(s), ("media", kind, lang))
        for s in table["deleted"]:
            exact.setdefault(fold_body(s), ("system", "deleted", lang))
        for s in table["calls"]:
            exact.setdefault(fold_body(s), ("system", "missed_call", lang))
        for s in table["live_location"]:
            exact.setdefault(fold_body(s), ("media", "location", lang))
        for s in table["edited"]:
            edited.add(unicodedata.normalize("NFKC", s).casefold())
        for s in table["location"]:
            labels.setdefault(fold_body(s), ("location", lang))
        for s in table["poll"]:
            labels.setdefault(fold_body(s), ("poll", lang))
        attached.update(table["file_attached"])
        group = f"l{len(languages)}"
        languages.append(lang)
        system.append(f"(?P<{group}>" + "|".join(template_regex(t) for t in table["system"]) + ")")
    for s in NULL_BODIES:
        exact[s] = ("system", "null", "")
    edited_rx = re.compile(r"[\s" + _MARKS + r"]*<(?:" + "|".join(re.escape(e) + r"\.?" for e in sorted(edited, key=len, reverse=True)) + r")>\s*$", re.I)
    # A location label is followed by a link; a poll label by the question (same line or the next).
    prefixed = re.compile(r"^[" + _MARKS + r"]*(?P<label>" + "|".join(re.escape(k) for k in sorted(labels, key=len, reverse=True))
                          + r")\s?[:：]\s*(?P<rest>.*)", re.I | re.S)
    attached_rx = re.compile(r"^(?P<file>.+?\.\w{2,5})\s*[(（](?:" + "|".join(re.escape(a) for a in sorted(attached, key=len, reverse=True)) + r")[)）]$", re.I)
    system_rx = re.compile(r"^(?:" + "|".join(system) + r")$", re.S)
    return Tables(exact, edited_rx, prefixed, labels, attached_rx, system_rx, languages)
