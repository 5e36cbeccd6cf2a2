// Light, dark, or the system's: kept in localStorage, applied as <html data-theme>.
export type Theme = 'system' | 'light' | 'dark';

const STORAGE = 'minerva.theme';

export function storedTheme(): Theme {
  const t = localStorage.getItem(STORAGE);
  return t === 'light' || t === 'dark' ? t : 'system';
}

export function nextTheme(t: Theme): Theme {
  return t === 'system' ? 'dark' : t === 'dark' ? 'light' : 'system';
}

export function applyTheme(t: Theme): void {
  if (t === 'system') {
    localStorage.removeItem(STORAGE);
    delete document.documentElement.dataset.theme;
  } else {
    localStorage.setItem(STORAGE, t);
    document.documentElement.dataset.theme = t;
  }
}
