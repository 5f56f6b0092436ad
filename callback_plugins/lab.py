"""The lab's screen output: Ansible's default callback, with one change.

A setting refused by a role's argument spec (meta/argument_specs.yml) is printed as the one line that matters,
    fatal: [localhost]: FAILED! => msg: 'Bad setting: value of stress_test_shape must be one of: ..., got: nonsense ...'
instead of the whole argument spec (~200 lines) and the validation task's internals. Every playbook, every role.
ansible.cfg selects it (stdout_callback = lab); anything else is the default callback's, options included.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.callback.default import CallbackModule as DefaultCallback

DOCUMENTATION = """
    name: lab
    type: stdout
    short_description: the default output, with argument-spec failures reduced to the refused settings
    description:
        - Ansible's default stdout callback; a failed validate_argument_spec prints only its argument errors.
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    requirements:
      - set as stdout_callback in ansible.cfg
"""

VALIDATE = {
    "validate_argument_spec",
    "ansible.builtin.validate_argument_spec",
    "ansible.legacy.validate_argument_spec",
}


class CallbackModule(DefaultCallback):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "lab"

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        if result.task.action in VALIDATE:
            errors = [str(error) for error in result.result.get("argument_errors", [])]
            result.result.clear()  # the spec, the validated values, the traceback: none of it helps
            result.result.update(
                failed=True,
                msg=f"Bad setting: {'; '.join(errors) or 'the arguments were refused'}"
                " (every setting is described in group_vars/all/ and the roles' meta/argument_specs.yml).",
            )
        super().v2_runner_on_failed(result, ignore_errors)
