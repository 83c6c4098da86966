# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rbdimg_global_optspecs
    string join \n h/help V/version
end

function __fish_rbdimg_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rbdimg_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rbdimg_using_subcommand
    set -l cmd (__fish_rbdimg_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rbdimg -n "__fish_rbdimg_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -s V -l version -d 'Print version'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "create" -d 'Create a new disk image'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "info" -d 'Display information about a disk image'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "convert" -d 'Convert an image file or snapshot into another image'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "resize" -d 'Resize a disk image'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "snapshot" -d 'List, apply, create or delete internal snapshots'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "check" -d 'Check an image for consistency'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "compare" -d 'Check whether two images have the same content'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "rebase" -d 'Change the backing file of an image (-b \'\' flattens an RBD clone)'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "commit" -d 'Commit an image\'s data into its backing file'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "amend" -d 'Change format-specific options of an image'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "bitmap" -d 'Add, remove, clear, enable, disable or merge persistent bitmaps'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "map" -d 'Dump the image\'s allocation: where each range\'s data lies'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "measure" -d 'Calculate the file size a new image needs'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "dd" -d 'Copy an image into a new one, dd(1) style'
complete -c rbdimg -n "__fish_rbdimg_needs_command" -f -a "bench" -d 'Time a run of read or write requests against an image'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand create" -s f -l format -d 'Image format (raw, qcow2)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand create" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand create" -s o -l options -d 'Format options, comma separated (-o help lists them)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand create" -s b -l backing -d 'Backing image of the new image' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand create" -s F -l backing-format -d 'Format of the backing image' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand create" -s u -l backing-unsafe -d 'Do not open the backing image (its size must then be given)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand create" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand create" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand info" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand info" -l output -d 'Output format: human or json' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand info" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand info" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand info" -s b -l backing-chain -d 'Show every image of the backing chain'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand info" -s U -l force-share -d 'Open the image even if another process uses it'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand info" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s T -l source-cache -d 'Source cache mode' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s l -l snapshot -d 'Convert a snapshot: snapshot.id=ID,snapshot.name=NAME or a name' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s S -l sparse-size -d 'Minimum run of zeros to leave sparse (default 4k; 0 writes everything)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s O -l output-format -d 'Output format' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s o -l options -d 'Output format options' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s t -l output-cache -d 'Target cache mode' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s B -l backing -d 'Backing image of the target' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s F -l backing-format -d 'Format of the target\'s backing image' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s m -l parallel -d 'Parallel requests in flight (1..16)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s f -l source-format -d 'Source format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -l salvage -d 'Read errors become warnings and zeros'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -l skip-broken-bitmaps -d 'With --bitmaps, skip inconsistent bitmaps instead of failing'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s W -l oob-writes -d 'Allow writes to complete out of order'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -l bitmaps -d 'Copy the source\'s persistent bitmaps'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -l target-image-opts -d 'The target name is an option string (needs -n)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -l target-is-zero -d 'The target is known to read as zeros (needs -n)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s n -d 'Write into an existing target instead of creating it'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s p -d 'Show progress'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s c -d 'Compress the target (qcow2)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -l image-opts -l source-image-opts -d 'Source names are option strings'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s U -l force-share -d 'Open the sources even if another process uses them'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand convert" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand resize" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand resize" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand resize" -l preallocation -d 'How to allocate the new space: off, metadata, falloc, full' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand resize" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand resize" -l shrink -d 'Allow shrinking (data past the new end is lost)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand resize" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand resize" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -s a -l apply -d 'Revert the image to a snapshot' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -s c -l create -d 'Create a snapshot' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -s d -l delete -d 'Delete a snapshot' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -s l -l list -d 'List snapshots'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -s U -l force-share -d 'Open the image even if another process uses it (listing only)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand snapshot" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -l output -d 'Output format: human or json' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -s r -l repair -d 'Repair: leaks or all' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -s T -l cache -d 'Cache mode' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -s U -l force-share -d 'Open the image even if another process uses it'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand check" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -s F -l b-format -l right-format -d 'Format of the second image (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -s T -l cache -d 'Cache mode for both images' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -s f -l a-format -l left-format -d 'Format of the first image (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -s p -l progress -d 'Show progress'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -s s -l strict -d 'Strict: differing sizes or allocation are differences too'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -l image-opts -d 'The filenames are option strings'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -s U -l force-share -d 'Open the images even if another process uses them'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand compare" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s t -l cache -d 'Cache mode for the image' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s b -l backing -d 'The new backing file ("" for none)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s F -l backing-format -d 'Format of the new backing file' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s T -l backing-cache -d 'Cache mode for the backing files' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s U -l force-share -d 'Open the image even if another process uses it'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s c -l compress -d 'Write the copied clusters compressed'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s u -l backing-unsafe -d 'Only rewrite the backing file name; compare nothing'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s p -l progress -d 'Show progress'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand rebase" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -s t -l cache -d 'Cache mode for the image' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -s b -l base -d 'The image of the backing chain to commit into (implies -d)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -s r -l rate -d 'I/O rate limit in bytes per second' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -s d -l drop -d 'Keep the image\'s data after committing it (do not empty it)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -s p -l progress -d 'Show progress'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand commit" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -s o -l options -d 'Format options to change, comma separated (-o help lists them)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -s t -l cache -d 'Cache mode for the image' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -l force -d 'Allow unsafe operations'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -s p -l progress -d 'Show progress'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -s q -l quiet -d 'Quiet: print nothing on success'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand amend" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -s g -l granularity -d 'Granularity of the bitmap --add creates' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -l merge -d 'Merge the bitmap SOURCE into BITMAP' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -s b -l source-file -d 'The image --merge takes its source bitmap from' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -s F -l source-format -d 'Format of the -b image' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -s f -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -l add -d 'Create BITMAP, recording future writes'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -l remove -d 'Remove BITMAP'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -l clear -d 'Clear every bit of BITMAP'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -l enable -d 'Start recording writes in BITMAP'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -l disable -d 'Stop recording writes in BITMAP'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bitmap" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand map" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand map" -l output -d 'Output format: human or json' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand map" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand map" -s s -l start-offset -d 'Map from this guest offset on' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand map" -s l -l max-length -d 'Map at most this many bytes' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand map" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand map" -s U -l force-share -d 'Open the image even if another process uses it'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand map" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -s o -l options -d 'Options of the target format, comma separated' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -l output -d 'Output format: human or json' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -s l -l snapshot -d 'Measure this snapshot of FILENAME: snapshot.id=ID,snapshot.name=NAME or a name' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -l size -d 'Measure a new image of this size (instead of FILENAME)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -s O -l target-format -d 'Target format (default raw)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -s U -l force-share -d 'Open the image even if another process uses it'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand measure" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand dd" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand dd" -l object -d 'Define an object: secret,id=ID,data=TEXT|file=PATH[,format=raw|base64][,keyid=ID,iv=IV]' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand dd" -s O -l output-format -d 'Format of the output (default raw)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand dd" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand dd" -s U -l force-share -d 'Open the image even if another process uses it'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand dd" -s h -l help -d 'Print help'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s f -l format -d 'Image format (probed when omitted)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -l flush-interval -d 'Flush after this many write requests' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s t -l cache -d 'Cache mode (default writeback)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s c -l count -d 'Number of requests (default 75000)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s d -l depth -d 'Requests in flight at once (default 64)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s s -l buffer-size -d 'Bytes per request (default 4k)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s S -l step-size -d 'Offset increment between requests (default: the buffer size)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s o -l offset -d 'Offset of the first request' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s i -l aio -d 'AIO backend: threads, native, io_uring' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -l pattern -d 'Byte written by write requests (default 0)' -r
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -l image-opts -d 'The filename is an option string (driver=...,file.filename=...)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s n -l native -d 'Native AIO (needs -t none or directsync on local files)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s w -l write -d 'Write requests instead of reads'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -l no-drain -d 'With --flush-interval: flush without waiting for requests in flight'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s U -l force-share -d 'Open the image even if another process uses it'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s q -d 'Quiet (bench prints its lines all the same, as qemu-img)'
complete -c rbdimg -n "__fish_rbdimg_using_subcommand bench" -s h -l help -d 'Print help'
