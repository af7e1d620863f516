#!/bin/sh
# Re-makes the example prompts: text → espeak-ng → 8000 Hz mono 16-bit PCM WAV,
# and the hold music from sine-like plucked tones (sox).
# Needs espeak-ng and sox (apt-get install espeak-ng sox).
#
# To change a prompt, edit its line below and run this script again; to add
# one, add a line `name|text` and refer to it as "name" in a flow.
# Any 8000 Hz mono 16-bit PCM WAV works as a prompt (e.g. a recorded voice:
#   sox recording.wav -r 8000 -c 1 -b 16 -e signed-integer NAME.wav).
set -eu

VOICE="${VOICE:-en-us}"
SPEED="${SPEED:-175}"     # words per minute
cd "$(dirname "$0")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# name|text
while IFS='|' read -r name text; do
    [ -n "$name" ] || continue
    espeak-ng -v "$VOICE" -s "$SPEED" -w "$tmp/$name.wav" "$text"
    # -D: no dither, so re-running gives identical files. The silence
    # effects trim espeak's leading/trailing quiet so prompts chain tightly.
    sox -D "$tmp/$name.wav" -r 8000 -c 1 -b 16 -e signed-integer "$name.wav" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
        pad 0.05 0.25 gain -n -3
    echo "$name.wav: $text"
done <<'PROMPTS'
welcome|Welcome to Hotline, the demo contact center.
menu|For sales, press 1. For support, press 2. To repeat this menu, press 9.
sales|You chose sales. Our sales team will be glad to help.
support|You chose support. Our support team is here for you.
invalid|Sorry, that is not a valid choice.
goodbye|Thank you for calling. Goodbye.
closed|Our office is closed now. We are open Monday to Thursday from 8 a.m. to 5 p.m., and on Friday from 8 a.m. to 2 p.m.
holiday|Today is a public holiday, and our office is closed.
hotline-menu|For support, press 1. To leave a callback request, press 2. For sales, press 3.
callback-menu|To leave a callback request, press 1.
vip-welcome|Welcome back. As a priority customer, you are served first.
vip-menu|To reach your support team, press 1. To speak to the duty manager, press 0.
please-hold|Thank you for holding. The next free operator will take your call.
no-agent|Sorry, no operator is free right now.
transferring|Please hold while we put you through.
offer-callback|If you would rather be called back than wait, press 1.
cb-confirm|To be called back on the number you are calling from, press 1. To enter another number, press 2.
cb-enter|Please key in your phone number, starting with zero six, then press the hash key.
cb-invalid|Sorry, that is not a valid phone number.
cb-readback|We will call you back on
promise-30min|We will call you back within thirty minutes.
promise-today|We will call you back today, within our opening hours.
promise-next-workday|We will call you back on the next working day.
queue-position|Your place in the queue is
queue-position-many|Many callers are waiting ahead of you.
wait-under-1|The expected waiting time is less than one minute.
wait-under-2|The expected waiting time is less than two minutes.
wait-under-3|The expected waiting time is less than three minutes.
wait-under-5|The expected waiting time is less than five minutes.
wait-under-10|The expected waiting time is less than ten minutes.
wait-under-15|The expected waiting time is less than fifteen minutes.
wait-under-20|The expected waiting time is less than twenty minutes.
wait-under-30|The expected waiting time is less than thirty minutes.
wait-over-30|The expected waiting time is more than thirty minutes.
digit-0|zero
digit-1|one
digit-2|two
digit-3|three
digit-4|four
digit-5|five
digit-6|six
digit-7|seven
digit-8|eight
digit-9|nine
PROMPTS

# Hold music: a slow plucked arpeggio (C major, then A minor), 0.4 s a
# note, soft enough to talk over; the queue step loops it.
notes="C4 E4 G4 C5 G4 E4 A3 C4 E4 A4 E4 C4"
i=0
for n in $notes; do
    sox -D -n -r 8000 -c 1 -b 16 -e signed-integer "$tmp/note$(printf %02d $i).wav" \
        synth 0.4 pluck "$n" fade 0 0.4 0.15 gain -9
    i=$((i + 1))
done
sox -D "$tmp"/note*.wav -r 8000 -c 1 -b 16 -e signed-integer hold-music.wav
echo "hold-music.wav: $notes"
