# >>> svc >>>
# Starts the svc daemon at login unless it runs. Added by 'svc install --method profile';
# 'svc uninstall --method profile' removes this block.
if [ -x {{svc}} ]; then {{command}}; fi
# <<< svc <<<
