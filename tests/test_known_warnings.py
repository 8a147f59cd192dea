"""The third-party noise ``quiet_known_noise`` filters stays filtered inside every test.

pytest puts back its own warning filters around each test; ``tests/conftest.py``
filters the known noise again before each one, fixtures included.
"""

from __future__ import annotations

import warnings


def test_known_noise_is_filtered_inside_a_test_and_nothing_else() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn(
            "The number of training batches (1) is smaller than the logging interval"
            " Trainer(log_every_n_steps=50).",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn("a warning the project has not seen", UserWarning, stacklevel=1)
    assert [str(warning.message) for warning in caught] == ["a warning the project has not seen"]
