// The recordings page: a mark's button seeks its row's player there and plays.
for (const button of document.querySelectorAll('#recordings button.mark')) {
  button.addEventListener('click', () => {
    const audio = button.closest('tr')?.querySelector('audio');
    if (!audio) return;
    const at = Number(button.dataset.at);
    const seek = () => { audio.currentTime = at; audio.play().catch(() => {}); };
    if (audio.readyState >= 1) seek();
    else { audio.addEventListener('loadedmetadata', seek, { once: true }); audio.load(); }
  });
}
