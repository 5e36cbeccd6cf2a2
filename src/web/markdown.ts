// A reply's Markdown → safe HTML: marked (GitHub's flavour: tables, lists, fenced code) renders,
// highlight.js colours code blocks in a handful of common languages (the core and only these
// keep the bundle small), and DOMPurify removes whatever could run (scripts, event handlers,
// javascript: URLs) from the result, since a model's reply is text from outside. Rendered again
// on each streamed piece: an unclosed fence is shown as code until it closes. No LaTeX (KaTeX is
// not a dependency): formulas stay as their source text.
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { Marked, type Tokens } from 'marked';

const LANGUAGES = { bash, c, cpp, css, go, java, javascript, json, python, rust, sql, typescript, xml, yaml };
for (const [name, fn] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, fn);
hljs.registerAliases(['sh', 'shell', 'zsh'], { languageName: 'bash' });
hljs.registerAliases(['js', 'jsx', 'mjs'], { languageName: 'javascript' });
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' });
hljs.registerAliases(['py'], { languageName: 'python' });
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' });
hljs.registerAliases(['rs'], { languageName: 'rust' });
hljs.registerAliases(['yml'], { languageName: 'yaml' });
hljs.registerAliases(['c++', 'h', 'hpp'], { languageName: 'cpp' });

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // A code block: its language and a copy button over the highlighted code (the button is
    // wired by the page, by delegation on `.copy-code`).
    code({ text, lang }: Tokens.Code): string {
      const language = (lang ?? '').trim().split(/\s+/)[0]!.toLowerCase();
      const known = language !== '' && hljs.getLanguage(language) !== undefined;
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escape(text);
      return `<div class="code-block"><div class="code-head"><span>${escape(language || 'text')}</span>`
        + '<button type="button" class="copy-code">Copy</button></div>'
        + `<pre><code class="hljs${known ? ` language-${escape(language)}` : ''}">${body}</code></pre></div>`;
    },
  },
});

// An image a reply names without a description is marked decorative (alt=""), so screen readers
// skip it rather than read its URL.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'IMG' && !node.hasAttribute('alt')) node.setAttribute('alt', '');
});

/** Markdown → sanitised HTML, ready for innerHTML. */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false });
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, ADD_ATTR: ['type'] });
}
