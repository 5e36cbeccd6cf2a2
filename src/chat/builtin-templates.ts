// Chat templates written here, for models that ship none (ChatML is the fallback, as in llama.cpp)
// and for `--chat-template <name>`. Each renders a plain conversation as llama.cpp's own built-in
// formatter of that name does (tested against llama.cpp's test-chat-template expectations).
// ChatML also lists tools and past calls Hermes-style (<tools>, <tool_call>, <tool_response>), so
// a model without a template of its own can still be offered tools.

/** ChatML, with tools in the Hermes style. */
const CHATML = `
{%- set ns = namespace(system='') -%}
{%- if messages and messages[0].role == 'system' -%}{%- set ns.system = messages[0].content -%}{%- endif -%}
{%- if tools -%}
<|im_start|>system
{% if ns.system %}{{ ns.system }}

{% endif %}# Tools

You can call functions to answer. Their signatures, one JSON object per line, are inside <tools></tools>:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>

To call a function, answer with one block per call, each holding a JSON object with the function's name and its arguments:
<tool_call>
{"name": <function-name>, "arguments": <arguments-object>}
</tool_call><|im_end|>
{% elif ns.system %}<|im_start|>system
{{ ns.system }}<|im_end|>
{% endif %}
{%- for m in messages -%}
{%- if loop.first and m.role == 'system' -%}
{%- elif m.role == 'assistant' -%}
<|im_start|>assistant
{{ m.content }}
{%- for call in m.tool_calls or [] -%}
{%- if m.content or not loop.first %}{{ '\n' }}{% endif -%}
<tool_call>
{"name": {{ call.function.name | tojson }}, "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif m.role == 'tool' -%}
<|im_start|>tool
<tool_response>
{{ m.content }}
</tool_response><|im_end|>
{% else -%}
<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif -%}
`;

/** Llama 2 chat: [INST] with the system prompt in <<SYS>> inside the first instruction. */
const LLAMA2 = `
{%- set ns = namespace(system='') -%}
{{ bos_token }}
{%- for m in messages -%}
{%- if m.role == 'system' -%}{%- set ns.system = m.content -%}
{%- elif m.role == 'user' -%}
[INST] {% if ns.system %}<<SYS>>
{{ ns.system }}
<</SYS>>

{% set ns.system = '' %}{% endif %}{{ m.content | trim }} [/INST]
{%- else -%}
{{ m.content | trim }}</s>
{%- endif -%}
{%- endfor -%}
`;

/** Llama 3 / 3.1 headers. */
const LLAMA3 = `
{{- bos_token -}}
{%- for m in messages -%}
<|start_header_id|>{{ m.role }}<|end_header_id|>

{{ m.content | trim }}<|eot_id|>
{%- endfor -%}
{%- if add_generation_prompt -%}<|start_header_id|>assistant<|end_header_id|>

{% endif -%}
`;

/** Gemma: no system role; the system prompt opens the first user turn. */
const GEMMA = `
{%- set ns = namespace(system='') -%}
{{ bos_token }}
{%- for m in messages -%}
{%- if m.role == 'system' -%}{%- set ns.system = m.content | trim -%}
{%- else -%}
<start_of_turn>{{ 'model' if m.role == 'assistant' else 'user' }}
{% if ns.system and m.role == 'user' %}{{ ns.system }}

{% set ns.system = '' %}{% endif %}{{ m.content | trim }}<end_of_turn>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt %}<start_of_turn>model
{% endif -%}
`;

/** Phi-3. */
const PHI3 = `
{%- for m in messages -%}
<|{{ m.role }}|>
{{ m.content }}<|end|>
{% endfor -%}
{%- if add_generation_prompt %}<|assistant|>
{% endif -%}
`;

/** Phi-4. */
const PHI4 = `
{%- for m in messages -%}
<|im_start|>{{ m.role }}<|im_sep|>{{ m.content }}<|im_end|>
{%- endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant<|im_sep|>{% endif -%}
`;

/** Mistral v7 (Mistral Large 2411, Small 3): [SYSTEM_PROMPT] and [INST]. */
const MISTRAL_V7 = `
{{- bos_token -}}
{%- for m in messages -%}
{%- if m.role == 'system' -%}[SYSTEM_PROMPT] {{ m.content }}[/SYSTEM_PROMPT]
{%- elif m.role == 'user' -%}[INST] {{ m.content }}[/INST]
{%- else %} {{ m.content }}</s>
{%- endif -%}
{%- endfor -%}
`;

/** Built-in templates by the names `--chat-template` takes (llama.cpp's names for the same formats). */
export const BUILTIN_CHAT_TEMPLATES: Readonly<Record<string, string>> = {
  chatml: CHATML.trim(),
  llama2: LLAMA2.trim(),
  llama3: LLAMA3.trim(),
  gemma: GEMMA.trim(),
  phi3: PHI3.trim(),
  phi4: PHI4.trim(),
  'mistral-v7': MISTRAL_V7.trim(),
};

/** The template a model without one of its own is given, as llama.cpp does. */
export const DEFAULT_CHAT_TEMPLATE = 'chatml';
