// Light and dark themes: the system's choice by default, or the one chosen in this browser.

const key = "portal.theme";

/** The chosen theme: `system`, `light` or `dark`. */
export function chosenTheme(storage = globalThis.localStorage) {
  try {
    const value = storage?.getItem(key);
    return value === "light" || value === "dark" ? value : "system";
  } catch {
    return "system";
  }
}

/** Applies `theme` (default: the remembered one) to the page and remembers it. */
export function applyTheme(theme = chosenTheme()) {
  const root = document.documentElement;
  if (theme === "light" || theme === "dark") root.dataset.theme = theme;
  else delete root.dataset.theme;
  try {
    if (theme === "system") localStorage.removeItem(key);
    else localStorage.setItem(key, theme);
  } catch {
    // Storage refused: the theme lasts for this page.
  }
}
