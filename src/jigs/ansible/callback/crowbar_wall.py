# The ansible jig's callback plugin (src/jigs/ansible): records what the play hands back to
# Crowbar in the directory named by $CROWBAR_ANSIBLE_OUT, beside the normal stdout callback:
#   wall.json       the play's set_stats values (stats.custom: "_run" and per host), at the end
#   failures.jsonl  one line per failed (not ignored) or unreachable task result, as it happens
# Without $CROWBAR_ANSIBLE_OUT it does nothing.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

try:
    from ansible.module_utils.common.json import AnsibleJSONEncoder
except ImportError:  # ansible-core < 2.11
    from ansible.parsing.ajson import AnsibleJSONEncoder

DOCUMENTATION = '''
    name: crowbar_wall
    type: aggregate
    short_description: records set_stats values and task failures for the Crowbar ansible jig
    description:
      - Writes stats.custom to $CROWBAR_ANSIBLE_OUT/wall.json at the end of the playbook and one
        JSON line per failed or unreachable task result to $CROWBAR_ANSIBLE_OUT/failures.jsonl.
    requirements:
      - enabled by the Crowbar ansible jig's generated ansible.cfg (callbacks_enabled)
'''

# result keys worth showing in a failure message
_KEYS = ('msg', 'rc', 'cmd', 'stderr', 'stdout', 'module_stderr', 'module_stdout', 'exception', 'reason')
_ITEM_KEYS = _KEYS + ('item', 'failed', 'unreachable')


def _pick(result, keys):
    return {k: result[k] for k in keys if k in result}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'crowbar_wall'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._out = os.environ.get('CROWBAR_ANSIBLE_OUT')

    def _record(self, kind, result):
        if not self._out:
            return
        res = result._result if isinstance(result._result, dict) else {'msg': str(result._result)}
        entry = {
            'kind': kind,
            'host': result._host.get_name(),
            'task': result._task.get_name(),
            'result': _pick(res, _KEYS),
        }
        items = res.get('results')
        if isinstance(items, list):
            entry['items'] = [_pick(i, _ITEM_KEYS) for i in items
                              if isinstance(i, dict) and (i.get('failed') or i.get('unreachable'))]
        with open(os.path.join(self._out, 'failures.jsonl'), 'a', encoding='utf-8') as f:
            f.write(json.dumps(entry, cls=AnsibleJSONEncoder, ensure_ascii=False) + '\n')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._record('failed', result)

    def v2_runner_on_unreachable(self, result):
        self._record('unreachable', result)

    def v2_playbook_on_stats(self, stats):
        if not self._out:
            return
        path = os.path.join(self._out, 'wall.json')
        tmp = path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(stats.custom, f, cls=AnsibleJSONEncoder, ensure_ascii=False)
        os.replace(tmp, path)
