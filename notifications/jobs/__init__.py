"""Jobs of the ``email``, ``notification`` and ``webhook-delivery`` queues, one module per channel."""
