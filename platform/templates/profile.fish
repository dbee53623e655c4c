# >>> svc >>>
# Starts the svc daemon at login unless it runs. Added by 'svc install --method profile';
# 'svc uninstall --method profile' removes this block.
if status is-login; and test -x {{svc}}
    {{command}}
end
# <<< svc <<<
