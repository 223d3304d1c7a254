"""What an operator watches: metrics, the Faust sensor, broker and lag monitoring, logs."""
