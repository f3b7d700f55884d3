"""Golden WhatsApp exports in 17 app languages, Android and iOS, written from WhatsApp's own strings.

Each sample is a short group chat in that language's date format (Korean, Japanese and Chinese with
the meridiem before the time, Arabic with Arabic-Indic digits) in which the members talk and
WhatsApp adds its own lines: media left out of the export, deleted messages, missed calls, the
end-to-end notice, group events, an edited marker, a location, a poll and a "null". After import and
`dataset build`, none of WhatsApp's lines may appear in the dataset, a media-only message is counted
as dropped, and a caption sent with a photo is kept.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from trainer.dataset.build import BuildOptions, build_dataset
from trainer.dataset.ingest import import_export
from trainer.importers import ImportOptions, get_importer

REPO = Path(__file__).resolve().parents[3]
LRM = "\u200e"
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _12h(t: datetime) -> tuple[int, bool]:
    return (t.hour % 12 or 12), t.hour >= 12


def _ko(t: datetime, seconds: bool) -> str:
    h, pm = _12h(t)
    return f"{t.year}. {t.month}. {t.day}. {'오후' if pm else '오전'} {h}:{t.minute:02d}" + (f":{t.second:02d}" if seconds else "")


def _zh(t: datetime, seconds: bool) -> str:
    h, pm = _12h(t)
    return f"{t.year}/{t.month}/{t.day} {'下午' if pm else '上午'}{h}:{t.minute:02d}" + (f":{t.second:02d}" if seconds else "")


def _ja(t: datetime, seconds: bool) -> str:
    return f"{t:%Y/%m/%d %H:%M}" + (f":{t.second:02d}" if seconds else "")


def _ar(t: datetime, seconds: bool) -> str:
    h, pm = _12h(t)
    text = f"{t.day}\u200f/{t.month}\u200f/{t.year}، {h}:{t.minute:02d}" + (f":{t.second:02d}" if seconds else "")
    return text.translate(ARABIC) + (" م" if pm else " ص")


def _us(t: datetime, seconds: bool) -> str:
    h, pm = _12h(t)
    return f"{t.month}/{t.day}/{t:%y}, {h}:{t.minute:02d}" + (f":{t.second:02d}" if seconds else "") + f"\u202f{'PM' if pm else 'AM'}"


def _hi(t: datetime, seconds: bool) -> str:
    h, pm = _12h(t)
    return f"{t:%d/%m/%y}, {h}:{t.minute:02d}" + (f":{t.second:02d}" if seconds else "") + f" {'pm' if pm else 'am'}"


def _fmt(pattern: str):
    return lambda t, seconds: t.strftime(pattern) + (f":{t.second:02d}" if seconds else "")


# Per language: the date/time writer, then WhatsApp's strings as that language's app writes them.
SAMPLES = {
    "en": dict(when=_us, media="<Media omitted>", omitted=["image omitted", "video omitted", "sticker omitted", "GIF omitted", "Contact card omitted"],
               deleted=["This message was deleted", "You deleted this message"], calls=["Missed voice call", "Missed video call"],
               e2e="Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.",
               events=["{a} added {b}", "{b} left", "{a} changed this group's icon", '{a} changed the subject from "Trip" to "Trip: Rome"'],
               edited="<This message was edited>", location="location: https://maps.google.com/?q=51.5,-0.12", poll="POLL:", attached="file attached",
               live="live location shared", doc="document omitted"),
    "de": dict(when=_fmt("%d.%m.%y, %H:%M"), media="<Medien ausgeschlossen>", omitted=["Bild weggelassen", "Video weggelassen", "Sticker weggelassen", "GIF weggelassen", "Kontaktkarte ausgelassen"],
               deleted=["Diese Nachricht wurde gelöscht.", "Du hast diese Nachricht gelöscht."], calls=["Verpasster Sprachanruf", "Verpasster Videoanruf"],
               e2e="Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt. Niemand außerhalb dieses Chats kann sie lesen oder anhören, nicht einmal WhatsApp.",
               events=["{a} hat {b} hinzugefügt", "{b} hat die Gruppe verlassen", "{a} hat das Gruppenbild geändert", "{a} hat den Betreff zu „Urlaub: Rom“ geändert"],
               edited="<Diese Nachricht wurde bearbeitet>", location="Standort: https://maps.google.com/?q=52.52,13.40", poll="UMFRAGE:", attached="Datei angehängt",
               live="Live-Standort geteilt", doc="Dokument weggelassen"),
    "es": dict(when=_fmt("%d/%m/%y, %H:%M"), media="<Multimedia omitido>", omitted=["imagen omitida", "video omitido", "sticker omitido", "GIF omitido", "tarjeta de contacto omitida"],
               deleted=["Se eliminó este mensaje.", "Eliminaste este mensaje."], calls=["Llamada de voz perdida", "Videollamada perdida"],
               e2e="Los mensajes y las llamadas están cifrados de extremo a extremo. Nadie fuera de este chat, ni siquiera WhatsApp, puede leerlos ni escucharlos.",
               events=["{a} añadió a {b}", "{b} salió del grupo", "{a} cambió el ícono de este grupo", '{a} cambió el asunto a "Viaje: Roma"'],
               edited="<Se editó este mensaje.>", location="ubicación: https://maps.google.com/?q=40.41,-3.70", poll="ENCUESTA:", attached="archivo adjunto",
               live="ubicación en tiempo real compartida", doc="documento omitido"),
    "fr": dict(when=_fmt("%d/%m/%Y %H:%M"), media="<Médias omis>", omitted=["image absente", "vidéo absente", "sticker omis", "GIF retiré", "carte de contact omise"],
               deleted=["Ce message a été supprimé", "Vous avez supprimé ce message"], calls=["Appel vocal manqué", "Appel vidéo manqué"],
               e2e="Les messages et les appels sont chiffrés de bout en bout. Aucun tiers, pas même WhatsApp, ne peut les lire ou les écouter.",
               events=["{a} a ajouté {b}", "{b} est parti", "{a} a changé l'icône de ce groupe", "{a} a changé le sujet en « Voyage : Rome »"],
               edited="<Ce message a été modifié>", location="position : https://maps.google.com/?q=48.85,2.35", poll="SONDAGE :", attached="fichier joint",
               live="position en direct partagée", doc="document omis"),
    "it": dict(when=_fmt("%d/%m/%y, %H:%M"), media="<Media omessi>", omitted=["immagine omessa", "video omesso", "sticker omesso", "GIF omessa", "scheda contatto omessa"],
               deleted=["Questo messaggio è stato eliminato", "Hai eliminato questo messaggio"], calls=["Chiamata vocale persa", "Videochiamata persa"],
               e2e="I messaggi e le chiamate sono crittografati end-to-end. Nessuno al di fuori di questa chat, nemmeno WhatsApp, può leggerli o ascoltarli.",
               events=["{a} ha aggiunto {b}", "{b} è uscito", "{a} ha cambiato l'immagine di questo gruppo", '{a} ha cambiato l\'oggetto in "Viaggio: Roma"'],
               edited="<Questo messaggio è stato modificato>", location="posizione: https://maps.google.com/?q=41.9,12.49", poll="SONDAGGIO:", attached="file allegato",
               live="posizione in tempo reale condivisa", doc="documento omesso"),
    "pt-BR": dict(when=_fmt("%d/%m/%Y %H:%M"), media="<Arquivo de mídia oculto>", omitted=["imagem ocultada", "vídeo omitido", "figurinha omitida", "GIF omitido", "cartão de contato omitido"],
                  deleted=["Esta mensagem foi apagada", "Você apagou esta mensagem"], calls=["Chamada de voz perdida", "Chamada de vídeo perdida"],
                  e2e="As mensagens e as chamadas são protegidas com a criptografia de ponta a ponta e ficam somente entre você e os participantes desta conversa.",
                  events=["{a} adicionou {b}", "{b} saiu", "{a} mudou a imagem deste grupo", '{a} mudou o assunto para "Viagem: Roma"'],
                  edited="<Mensagem editada>", location="localização: https://maps.google.com/?q=-23.55,-46.63", poll="ENQUETE:", attached="arquivo anexado",
                  live="localização em tempo real compartilhada", doc="documento omitido"),
    "pt-PT": dict(when=_fmt("%d/%m/%y, %H:%M"), media="<Multimédia omitida>", omitted=["imagem omitida", "vídeo omitido", "autocolante omitido", "GIF omitido", "cartão de contacto omitido"],
                  deleted=["Esta mensagem foi eliminada", "Eliminou esta mensagem"], calls=["Chamada de voz perdida", "Videochamada perdida"],
                  e2e="As mensagens e as chamadas estão encriptadas ponto a ponto. Ninguém fora desta conversa, nem mesmo o WhatsApp, as pode ler ou ouvir.",
                  events=["{a} adicionou {b}", "{b} saiu", "{a} alterou o ícone deste grupo", '{a} alterou o assunto de "Viagem" para "Viagem: Roma"'],
                  edited="<Esta mensagem foi editada>", location="localização: https://maps.google.com/?q=38.72,-9.14", poll="SONDAGEM:", attached="ficheiro anexado",
                  live="localização em tempo real partilhada", doc="documento omitido"),
    "nl": dict(when=_fmt("%d-%m-%Y %H:%M"), media="<Media weggelaten>", omitted=["afbeelding weggelaten", "video weggelaten", "sticker weggelaten", "GIF weggelaten", "contactkaart weggelaten"],
               deleted=["Dit bericht is verwijderd", "Je hebt dit bericht verwijderd"], calls=["Gemiste spraakoproep", "Gemiste video-oproep"],
               e2e="Berichten en oproepen worden end-to-end versleuteld. Niemand buiten deze chat, zelfs WhatsApp niet, kan ze lezen of beluisteren.",
               events=["{a} heeft {b} toegevoegd", "{b} heeft de groep verlaten", "{a} heeft de afbeelding van deze groep gewijzigd", '{a} heeft het onderwerp gewijzigd van "Reis" naar "Reis: Rome"'],
               edited="<Dit bericht is bewerkt>", location="locatie: https://maps.google.com/?q=52.37,4.89", poll="PEILING:", attached="bestand bijgevoegd",
               live="live locatie gedeeld", doc="document weggelaten"),
    "tr": dict(when=_fmt("%d.%m.%Y %H:%M"), media="<Medya dahil edilmedi>", omitted=["görüntü dahil edilmedi", "video dahil edilmedi", "çıkartma dahil edilmedi", "GIF dahil edilmedi", "kişi kartı dahil edilmedi"],
               deleted=["Bu mesaj silindi", "Bu mesajı sildiniz"], calls=["Cevapsız sesli arama", "Cevapsız görüntülü arama"],
               e2e="Mesajlar ve aramalar uçtan uca şifrelidir. WhatsApp dahil olmak üzere bu sohbetin dışında bulunan hiç kimse bunları okuyamaz ve dinleyemez.",
               events=["{a}, {b} kişisini ekledi", "{b} gruptan ayrıldı", "{a} bu grubun simgesini değiştirdi", '{a} konuyu "Gezi: Roma" olarak değiştirdi'],
               edited="<Bu mesaj düzenlendi>", location="konum: https://maps.google.com/?q=41.0,28.97", poll="ANKET:", attached="dosya ekli",
               live="canlı konum paylaşıldı", doc="belge dahil edilmedi"),
    "ru": dict(when=_fmt("%d.%m.%Y, %H:%M"), media="<Без медиафайлов>", omitted=["изображение отсутствует", "видео отсутствует", "стикер отсутствует", "GIF отсутствует", "карточка контакта отсутствует"],
               deleted=["Данное сообщение удалено", "Вы удалили данное сообщение"], calls=["Пропущенный аудиозвонок", "Пропущенный видеозвонок"],
               e2e="Сообщения и звонки защищены сквозным шифрованием. Никто за пределами этого чата, даже WhatsApp, не может их прочитать или прослушать.",
               events=["{a} добавил(-а) {b}", "{b} вышел(-ла) из группы", "{a} изменил(-а) изображение этой группы", "{a} изменил(-а) тему с «Поездка» на «Поездка: Рим»"],
               edited="<Сообщение изменено>", location="геопозиция: https://maps.google.com/?q=55.75,37.61", poll="ОПРОС:", attached="файл прикреплен",
               live="трансляция геоданных", doc="документ отсутствует"),
    "pl": dict(when=_fmt("%d.%m.%Y, %H:%M"), media="<pominięto multimedia>", omitted=["pominięto obraz", "pominięto wideo", "pominięto naklejkę", "pominięto GIF", "pominięto wizytówkę"],
               deleted=["Ta wiadomość została usunięta", "Usunięto tę wiadomość"], calls=["Nieodebrane połączenie głosowe", "Nieodebrane połączenie wideo"],
               e2e="Wiadomości i połączenia są szyfrowane end-to-end. Nikt spoza tego czatu, nawet WhatsApp, nie może ich odczytać ani odsłuchać.",
               events=["{a} dodał(a) {b}", "{b} opuścił(a) grupę", "{a} zmienił(a) ikonę tej grupy", "{a} zmienił(a) temat z „Wycieczka” na „Wycieczka: Rzym”"],
               edited="<Edytowano tę wiadomość>", location="lokalizacja: https://maps.google.com/?q=52.22,21.01", poll="ANKIETA:", attached="załączono plik",
               live="udostępniona lokalizacja na żywo", doc="pominięto dokument"),
    "id": dict(when=_fmt("%d/%m/%y %H.%M"), media="<Media tidak disertakan>", omitted=["gambar tidak disertakan", "video tidak disertakan", "stiker tidak disertakan", "GIF tidak disertakan", "kartu kontak tidak disertakan"],
               deleted=["Pesan ini telah dihapus", "Anda menghapus pesan ini"], calls=["Panggilan suara tak terjawab", "Panggilan video tak terjawab"],
               e2e="Pesan dan panggilan terenkripsi secara end-to-end. Tidak ada orang di luar chat ini, termasuk WhatsApp, yang dapat membaca atau mendengarkannya.",
               events=["{a} menambahkan {b}", "{b} keluar", "{a} mengubah ikon grup ini", '{a} mengubah subjek menjadi "Liburan: Roma"'],
               edited="<Pesan ini telah diedit>", location="lokasi: https://maps.google.com/?q=-6.2,106.84", poll="POLING:", attached="file terlampir",
               live="lokasi terkini dibagikan", doc="dokumen tidak disertakan"),
    "hi": dict(when=_hi, media="<मीडिया के बिना>", omitted=["इमेज हटाई गई", "वीडियो हटाया गया", "स्टिकर हटाया गया", "GIF हटाया गया", "संपर्क कार्ड हटाया गया"],
               deleted=["यह मैसेज हटा दिया गया था", "आपने यह मैसेज हटा दिया"], calls=["मिस्ड वॉइस कॉल", "मिस्ड वीडियो कॉल"],
               e2e="मैसेज और कॉल एंड-टू-एंड एन्क्रिप्टेड हैं. इस चैट के बाहर का कोई भी व्यक्ति, यहां तक कि WhatsApp भी उन्हें पढ़ या सुन नहीं सकता.",
               events=["{a} ने {b} को जोड़ा", "{b} ने ग्रुप छोड़ दिया", "{a} ने इस ग्रुप का आइकन बदला", '{a} ने विषय "यात्रा" से बदलकर "यात्रा: रोम" कर दिया'],
               edited="<यह मैसेज एडिट किया गया था>", location="लोकेशन: https://maps.google.com/?q=28.61,77.2", poll="पोल:", attached="फ़ाइल अटैच की गई",
               live="लाइव लोकेशन शेयर की गई", doc="डॉक्यूमेंट हटाया गया"),
    "ar": dict(when=_ar, media="<تم استبعاد الوسائط>", omitted=["تم استبعاد الصورة", "تم استبعاد الفيديو", "تم استبعاد الملصق", "تم استبعاد صورة GIF", "تم استبعاد بطاقة جهة الاتصال"],
               deleted=["تم حذف هذه الرسالة", "لقد حذفت هذه الرسالة"], calls=["مكالمة صوتية فائتة", "مكالمة فيديو فائتة"],
               e2e="الرسائل والمكالمات مشفرة تماماً بين الطرفين. لا أحد خارج هذه الدردشة، ولا حتى واتساب، يمكنه قراءتها أو الاستماع إليها.",
               events=["{a} أضاف {b}", "{b} غادر", "{a} غيّر صورة هذه المجموعة", '{a} غيّر الموضوع إلى "رحلة: روما"'],
               edited="<تم تعديل هذه الرسالة>", location="الموقع: https://maps.google.com/?q=24.71,46.67", poll="استطلاع:", attached="ملف مرفق",
               live="تمت مشاركة الموقع المباشر", doc="تم استبعاد المستند"),
    "ja": dict(when=_ja, media="<メディアは含まれていません>", omitted=["画像は含まれていません", "動画は含まれていません", "スタンプは含まれていません", "GIFは含まれていません", "連絡先カードは含まれていません"],
               deleted=["このメッセージは削除されました", "メッセージを削除しました"], calls=["音声通話の不在着信", "ビデオ通話の不在着信"],
               e2e="メッセージと通話はエンドツーエンドで暗号化されています。このチャットの参加者以外は、WhatsAppであっても、メッセージを読んだり通話を聞いたりすることはできません。",
               events=["{a}が{b}を追加しました", "{b}が退出しました", "{a}がこのグループのアイコンを変更しました", "{a}がグループ名を「旅行: ローマ」に変更しました"],
               edited="<このメッセージは編集されました>", location="位置情報: https://maps.google.com/?q=35.68,139.69", poll="投票:", attached="ファイル添付",
               live="ライブ位置情報を共有しました", doc="ドキュメントは含まれていません"),
    "ko": dict(when=_ko, media="<미디어 파일 생략>", omitted=["사진 생략", "동영상 생략", "스티커 생략", "GIF 생략", "연락처 카드 생략"],
               deleted=["삭제된 메시지입니다", "메시지를 삭제했습니다"], calls=["부재중 음성 통화", "부재중 영상 통화"],
               e2e="메시지와 전화는 종단간 암호화되어 보호됩니다. WhatsApp을 포함해 채팅방 밖의 누구도 메시지를 읽거나 전화 내용을 들을 수 없습니다.",
               events=["{a}님이 {b}님을 추가했습니다", "{b}님이 나갔습니다", "{a}님이 이 그룹의 아이콘을 변경했습니다", "{a}님이 그룹 제목을 '여행: 로마'(으)로 변경했습니다"],
               edited="<수정된 메시지입니다>", location="위치: https://maps.google.com/?q=37.56,126.97", poll="투표:", attached="파일 첨부됨",
               live="실시간 위치 공유됨", doc="문서 생략"),
    "zh": dict(when=_zh, media="<省略影音内容>", omitted=["图片已忽略", "视频已忽略", "贴图已忽略", "GIF 已忽略", "联系人名片已忽略"],
               deleted=["此消息已删除", "你删除了此消息"], calls=["语音通话未接", "视频通话未接"],
               e2e="消息和通话都进行端到端加密。对话之外的任何人，包括 WhatsApp，都无法读取或收听。",
               events=["{a}添加了{b}", "{b}已退出", "{a}更改了此群组的头像", "{a}将群组名称更改为“旅行: 罗马”"],
               edited="<此消息已编辑>", location="位置: https://maps.google.com/?q=39.9,116.4", poll="投票:", attached="已附加文件",
               live="实时位置已共享", doc="文档已忽略"),
}
OWNER, FRIEND, OTHER = "Olivia Owner", "Marek Lindqvist", "Sunita Rao"
CHAT = [("Marek", "are we still on for the weekend plans, friends"), ("Olivia", "absolutely, I booked the cabin by the lake already"),
        ("Marek", "great news, what should I bring along then"), ("Olivia", "bring the board games and some warm socks")]


def export(lang: str, ios: bool) -> tuple[str, list[str]]:
    """The export's text and WhatsApp's own lines in it (what must not reach a dataset)."""
    s = SAMPLES[lang]
    t = datetime(2024, 3, 19, 8, 59, 30)        # day 19: unambiguous day/month order
    names = {"Marek": FRIEND, "Olivia": OWNER}
    lines: list[str] = []
    theirs: list[str] = []

    def head() -> str:
        nonlocal t
        t += timedelta(minutes=1)
        stamp = s["when"](t, ios)
        return f"[{stamp}] " if ios else f"{stamp} - "

    def say(who: str, body: str, whatsapp: bool = False, lrm: bool = False) -> None:
        lines.append(f"{head()}{who}: {LRM if lrm else ''}{body}")
        if whatsapp:
            theirs.append(body)

    def service(body: str) -> None:        # Android: a line without sender; iOS: the group "speaks", behind a mark
        if ios:
            lines.append(f"{head()}Trip: {LRM}{body}")
        else:
            lines.append(f"{head()}{body}")
        theirs.append(body)

    service(s["e2e"])
    for event in s["events"]:
        service(event.format(a=FRIEND, b=OTHER))
    for i, (who, text) in enumerate(CHAT):
        say(names[who], text + (f" {lang} {'ios' if ios else 'android'}" if i == 0 else ""))
    if ios:
        for body in s["omitted"]:
            say(FRIEND, body, whatsapp=True, lrm=True)
        say(FRIEND, s["doc"].join(["report.pdf • 3 pages ", ""]) if lang == "en" else s["doc"], whatsapp=True, lrm=True)
        lines.append(f"{head()}{FRIEND}: {LRM}{s['omitted'][0]}\nthe view from the cabin porch")
        theirs.append(s["omitted"][0])
    else:
        say(FRIEND, s["media"], whatsapp=True)
        say(FRIEND, s["media"] + "\nthe view from the cabin porch")
        say(FRIEND, f"IMG-20240319-WA0003.jpg ({s['attached']})", whatsapp=True)
        say(FRIEND, "null", whatsapp=True)
    say(OWNER, "what a view, cannot wait to get there")
    say(FRIEND, s["deleted"][0], whatsapp=True)
    say(OWNER, s["deleted"][1], whatsapp=True, lrm=ios)
    say(FRIEND, s["calls"][0], whatsapp=True, lrm=ios)
    say(FRIEND, s["calls"][1], whatsapp=True, lrm=ios)
    say(FRIEND, s["location"], whatsapp=True, lrm=ios)
    say(FRIEND, s["live"], whatsapp=True, lrm=ios)
    poll = f"{s['poll']}\nwhen do we leave\nOPTION: friday (2 votes)\nOPTION: saturday (1 vote)"
    lines.append(f"{head()}{FRIEND}: {LRM if ios else ''}{poll}")
    theirs += [s["poll"], "OPTION: friday (2 votes)"]
    say(FRIEND, "see you friday then " + s["edited"])
    theirs.append(s["edited"])
    say(OWNER, "see you friday, drive safe")
    return "\n".join(lines) + "\n", theirs


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_parse_golden_android_and_ios(tmp_path, lang):
    for ios in (False, True):
        text, _theirs = export(lang, ios)
        path = tmp_path / f"{lang}-{'ios' if ios else 'android'}.txt"
        path.write_text(text, encoding="utf-8")
        r = get_importer("whatsapp").parse(path, ImportOptions(owner=(OWNER,)))
        assert not r.problems, r.problems[:3]
        kinds = [m.kind for m in r.messages]
        texts = [m.text for m in r.messages if m.kind == "text"]
        # The members' own words, and nothing else, are text.
        assert texts[:4] == [CHAT[0][1] + f" {lang} {'ios' if ios else 'android'}", *(c[1] for c in CHAT[1:])], (lang, ios, texts)
        assert texts[4:] == ["what a view, cannot wait to get there", "see you friday then", "see you friday, drive safe"], (lang, ios, texts)
        assert kinds.count("system") >= 8 + (1 if not ios else 0), (lang, ios, list(zip(kinds, [m.text for m in r.messages])))
        captioned = [m.text for m in r.messages if m.kind == "media" and "\n" in m.text]
        assert [c.split("\n", 1)[1] for c in captioned] == ["the view from the cabin porch"], (lang, ios, captioned)
        first = r.messages[0].timestamp
        assert (first.hour, first.minute, first.date().isoformat()) == (9, 0, "2024-03-19"), (lang, ios, first)
        assert any(m.timestamp.hour >= 9 for m in r.messages)


@pytest.mark.parametrize("lang", ["ko", "ja", "zh", "ar"])
def test_meridiem_before_the_time_and_eastern_digits(tmp_path, lang):
    t = datetime(2024, 1, 15, 21, 5, 12)
    when = SAMPLES[lang]["when"]
    path = tmp_path / "chat.txt"
    path.write_text(f"{when(t, False)} - {FRIEND}: evening\n[{when(t.replace(hour=0, minute=30), True)}] {OWNER}: past midnight\n"
                    f"{when(t.replace(hour=12, minute=1), False)} - {FRIEND}: noon\n", encoding="utf-8")
    r = get_importer("whatsapp").parse(path, ImportOptions())
    assert [m.timestamp for m in r.messages] == [datetime(2024, 1, 15, 21, 5), datetime(2024, 1, 15, 0, 30, 12), datetime(2024, 1, 15, 12, 1)]
    assert [m.text for m in r.messages] == ["evening", "past midnight", "noon"]


def test_region_hint_from_whatsapp_language(tmp_path):
    text, _ = export("de", False)
    path = tmp_path / "chat.txt"
    path.write_text(text, encoding="utf-8")
    r = get_importer("whatsapp").parse(path, ImportOptions(owner=(OWNER,)))
    assert (r.region, r.region_from) == ("DE", "WhatsApp's language (de)")
    text, _ = export("ko", True)
    path.write_text(text, encoding="utf-8")
    assert get_importer("whatsapp").parse(path, ImportOptions()).region == "KR"


@pytest.mark.parametrize("lang", sorted(SAMPLES))
async def test_no_whatsapp_line_reaches_a_dataset(db, settings, tmp_path, lang):
    from bot.persona import load_persona

    persona = load_persona(REPO / "personas" / "twin")
    theirs_all = []
    for ios in (False, True):
        text, theirs = export(lang, ios)
        theirs_all += theirs
        path = tmp_path / f"WhatsApp Chat with Trip {'ios' if ios else 'android'}.txt"
        path.write_text(text, encoding="utf-8")
        await import_export(db, persona="twin", kind="whatsapp", path=path, options=ImportOptions(owner=(OWNER,)))
    result = await build_dataset(db, persona=persona, data_dir=settings.core.data_dir, options=BuildOptions(val_fraction=0.0))
    out = "".join((result.folder / f).read_text(encoding="utf-8") for f in ("train.jsonl", "val.jsonl"))
    contents = "\n".join(m["content"] for line in out.splitlines() for m in json.loads(line)["messages"][1:])
    leaked = [line for line in theirs_all if line.strip("<>.") in contents or line in contents]
    assert not leaked, (lang, leaked)
    assert "cabin by the lake" in contents and "the view from the cabin porch" in contents
    assert result.manifest["cleanup"]["dropped_media_only"] >= 2
