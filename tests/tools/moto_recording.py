"""moto_server with its request recorder on (MOTO_ENABLE_RECORDING, MOTO_RECORDER_FILEPATH), one request
written at a time: the server answers requests on several threads, and the recorder appends each as a
line of JSON without a lock, so two requests at once (the tool uploads its files side by side) would
tear each other's line. Everything else is moto's own.

    python moto_recording.py -H 127.0.0.1 -p PORT
"""

import sys
import threading

from moto.moto_api._internal.recorder.models import Recorder
from moto.server import main

_lock = threading.Lock()
_record = Recorder._record_request


def _one_at_a_time(self, *args, **kwargs):
    with _lock:
        return _record(self, *args, **kwargs)


Recorder._record_request = _one_at_a_time
sys.exit(main(sys.argv[1:]))
