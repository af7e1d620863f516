#!/bin/sh
# Re-makes the example prompts: text → espeak-ng → 8000 Hz mono 16-bit PCM WAV.
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
PROMPTS
