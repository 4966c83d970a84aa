// A package in no layer.
package newpkg
