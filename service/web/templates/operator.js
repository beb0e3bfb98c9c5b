// Progressive enhancement only: choosing a filter applies it. The form works without this.
// Inlined by pages.py, and allowed by the hash in its Content-Security-Policy.
for (const select of document.querySelectorAll("form.filters select")) {
  select.addEventListener("change", () => select.form.submit());
}
