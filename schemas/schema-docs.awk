# Puts the blocks printed by schemas/schema-doc (the first file) into a doc
# (the second file) in place of the blocks with the same name, leaving every
# other line as it is; prints the result. An unknown block name is an error.
FNR == NR {
    if ($0 ~ /^<!-- BEGIN /) { name = $3; gen[name] = ""; inblock = 1; next }
    if ($0 ~ /^<!-- END /) { inblock = 0; next }
    if (inblock) gen[name] = gen[name] $0 "\n"
    next
}
/^<!-- BEGIN / {
    print
    if (!($3 in gen)) { print "schema-docs: " FILENAME ": no generated block " $3 > "/dev/stderr"; bad = 1 }
    else printf "%s", gen[$3]
    skip = 1
    next
}
/^<!-- END / { skip = 0; print; next }
!skip { print }
END { exit bad }
