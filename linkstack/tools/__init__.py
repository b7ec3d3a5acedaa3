"""What users run: :mod:`.cli` (the ``linkstack`` command), :mod:`.demo` and
:mod:`.framing_demo` (``linkstack demo``), :mod:`.fuzz` (``linkstack fuzz``) and
:mod:`.bench` (``linkstack bench``). Tools may import every layer; nothing imports them."""
