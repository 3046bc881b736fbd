#!/bin/sh
echo "${GREETING:-hello} from $(hostname) running $(uname -s)"
